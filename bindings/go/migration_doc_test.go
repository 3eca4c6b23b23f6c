package lifecycle

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestMigrationGuide keeps MIGRATION.md true to the API when it is followed literally: every
// fleet method and package name it uses exists, and every code fence is a bare opening (with
// its language) or closing line, so no snippet runs into the prose after it.
func TestMigrationGuide(t *testing.T) {
	text, err := os.ReadFile("MIGRATION.md")
	must(t, err)
	guide := string(text)

	open := false
	for i, line := range strings.Split(guide, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "```") {
			continue
		}
		fence := strings.TrimSpace(line)
		if open && fence != "```" {
			t.Errorf("MIGRATION.md:%d: a closing fence with text after it: %q", i+1, line)
		}
		if !open && !regexp.MustCompile("^```[a-z]*$").MatchString(fence) {
			t.Errorf("MIGRATION.md:%d: an opening fence with text after it: %q", i+1, line)
		}
		open = !open
	}
	if open {
		t.Error("MIGRATION.md: a code fence is never closed")
	}

	fleet := reflect.TypeOf((*Fleet)(nil))
	methods := 0
	for _, m := range regexp.MustCompile(`\bfleet\.([A-Z]\w*)\(`).FindAllStringSubmatch(guide, -1) {
		methods++
		if _, ok := fleet.MethodByName(m[1]); !ok {
			t.Errorf("MIGRATION.md calls fleet.%s, which Fleet does not have", m[1])
		}
	}

	exported := packageNames(t)
	names := 0
	for _, m := range regexp.MustCompile(`\blifecycle\.([A-Z]\w*)`).FindAllStringSubmatch(guide, -1) {
		names++
		if !exported[m[1]] {
			t.Errorf("MIGRATION.md names lifecycle.%s, which the package does not export", m[1])
		}
	}
	// The guide is about these calls: a parser that found none would pass for the wrong reason.
	if methods < 40 || names < 20 {
		t.Fatalf("found only %d fleet calls and %d package names in MIGRATION.md", methods, names)
	}
}

// packageNames lists the package's exported top-level names, from its source files for every
// build configuration (the guide must hold on both backends).
func packageNames(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(".")
	must(t, err)
	names := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, parser.SkipObjectResolution)
		must(t, err)
		if f.Name.Name != "lifecycle" {
			continue
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						names[s.Name.Name] = s.Name.IsExported()
					case *ast.ValueSpec:
						for _, n := range s.Names {
							names[n.Name] = n.IsExported()
						}
					}
				}
			}
		}
	}
	return names
}
