//go:build !cgo || nl_wasm

package lifecycle

// The data directories the WebAssembly module sees, and what their errors really were.
//
// wazero reports every host error it has no WASI number for as EIO, and its set has no
// ENOSPC: on a full disk the library inside the module sees "I/O error (os error 29)" where
// the native library says "No space left on device (os error 28)". This file system passes
// everything through to wazero's own directory file system, and when a write fails with EIO
// it asks the host file system whether it is full; the instance then words the library's error
// as the native library would (wasmInstance.nativeErrno). Same code, same text, either backend.

import (
	"io/fs"
	"strings"
	"sync/atomic"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// hostErrno remembers that the last EIO the module saw on a mounted directory was really a
// full disk. One per instance; calls on an instance are serialised, so "last" is the call's.
type hostErrno struct{ full atomic.Bool }

// The module's text for the EIO it was given, and the native library's for a full disk.
const (
	wasiEIO    = "I/O error (os error 29)"
	nativeFull = "No space left on device (os error 28)"
)

// reword replaces the module's EIO text by the native text of what the host really had,
// and forgets it.
func (h *hostErrno) reword(msg string) string {
	if h.full.Swap(false) {
		return strings.ReplaceAll(msg, wasiEIO, nativeFull)
	}
	return msg
}

// classify records why an operation on host directory dir failed with EIO: a file system
// without free blocks or inodes is full (diskIsFull; false where it cannot be asked).
func (h *hostErrno) classify(dir string, errno experimentalsys.Errno) experimentalsys.Errno {
	if errno == experimentalsys.EIO && diskIsFull(dir) {
		h.full.Store(true)
	}
	return errno
}

// diskFS is a mounted host directory.
type diskFS struct {
	experimentalsys.FS
	dir  string
	seen *hostErrno
}

func newDiskFS(dir string, seen *hostErrno) experimentalsys.FS {
	return &diskFS{FS: sysfs.DirFS(dir), dir: dir, seen: seen}
}

func (d *diskFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	f, errno := d.FS.OpenFile(path, flag, perm)
	if errno != 0 {
		return nil, d.seen.classify(d.dir, errno)
	}
	return &diskFile{File: f, fs: d}, 0
}

func (d *diskFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	return d.seen.classify(d.dir, d.FS.Mkdir(path, perm))
}

func (d *diskFS) Rename(from, to string) experimentalsys.Errno {
	return d.seen.classify(d.dir, d.FS.Rename(from, to))
}

// diskFile is a file of a mounted directory; the calls that can fill a disk are classified.
type diskFile struct {
	experimentalsys.File
	fs *diskFS
}

func (f *diskFile) Write(buf []byte) (int, experimentalsys.Errno) {
	n, errno := f.File.Write(buf)
	return n, f.fs.seen.classify(f.fs.dir, errno)
}

func (f *diskFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	n, errno := f.File.Pwrite(buf, off)
	return n, f.fs.seen.classify(f.fs.dir, errno)
}

func (f *diskFile) Truncate(size int64) experimentalsys.Errno {
	return f.fs.seen.classify(f.fs.dir, f.File.Truncate(size))
}

func (f *diskFile) Sync() experimentalsys.Errno {
	return f.fs.seen.classify(f.fs.dir, f.File.Sync())
}

func (f *diskFile) Datasync() experimentalsys.Errno {
	return f.fs.seen.classify(f.fs.dir, f.File.Datasync())
}
