// Command modzip writes a Go module zip (the format a module proxy serves) of one module
// directory, for scripts/check-dist's file-based GOPROXY: every regular file below the
// directory, under the prefix "<module>@<version>/", except nested modules (directories with
// their own go.mod), files the repository ignores (listed with -skip) and test binaries.
//
//	go run ./scripts/modzip -skip wasm/dev/node_lifecycle.wasm DIR MODULE VERSION OUT.zip
package main

import (
	"archive/zip"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	var skip multi
	flag.Var(&skip, "skip", "a path below DIR to leave out (repeatable)")
	flag.Parse()
	if flag.NArg() != 4 {
		fmt.Fprintln(os.Stderr, "usage: modzip [-skip path]... DIR MODULE VERSION OUT.zip")
		os.Exit(2)
	}
	dir, module, version, out := flag.Arg(0), flag.Arg(1), flag.Arg(2), flag.Arg(3)
	if err := write(dir, module+"@"+version+"/", skip, out); err != nil {
		fmt.Fprintln(os.Stderr, "modzip:", err)
		os.Exit(1)
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, filepath.Clean(v)); return nil }

func write(dir, prefix string, skip []string, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		for _, s := range skip {
			if rel == s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if d.IsDir() {
			if rel != "." {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // a nested module ships on its own
				}
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(rel, ".test") {
			return nil
		}
		w, err := zw.Create(prefix + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
