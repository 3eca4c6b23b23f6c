//go:build cgo && !nl_wasm

package lifecycle

import (
	"errors"
	"strings"
	"testing"
)

// A shared fleet needs the WebAssembly backend; the native build says so instead of opening a
// fleet that would not be shared.
func TestSharedNeedsTheWebAssemblyBackend(t *testing.T) {
	_, err := New(Options{Shared: &Replication{ReplicaID: "a"}})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "CGO_ENABLED=0 or -tags nl_wasm") {
		t.Fatalf("Options.Shared on the native backend: %v", err)
	}
}
