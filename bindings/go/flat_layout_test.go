package lifecycle

import (
	"testing"

	"github.com/payperplay/node-lifecycle/bindings/go/internal/cabi"
)

// Every offset, size and flag the flat decoder (flat.go) uses is the one the C compiler gives
// for include/node_lifecycle.h. The WebAssembly backend reads the same little-endian layout
// (tests/abi.rs pins it in Rust for every target), so this needs cgo.
func TestFlatLayoutMatchesHeader(t *testing.T) {
	c := cabi.Layout()
	if c == nil {
		t.Skip("the C header's layout is checked on the cgo backend")
	}
	if len(c) != len(flatLayout) {
		t.Fatalf("flat.go names %d layout facts, the C side %d", len(flatLayout), len(c))
	}
	for name, want := range flatLayout {
		got, ok := c[name]
		if !ok {
			t.Errorf("%s: not known to the C side", name)
			continue
		}
		if got != want {
			t.Errorf("%s: flat.go says %d, the C header %d", name, want, got)
		}
	}
}
