//go:build !cgo || nl_wasm

package lifecycle

import (
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
)

// A trap inside the module (what a Rust panic becomes on wasm) poisons that fleet with a typed
// error, closes its instance, and leaves other fleets alone. The trap is provoked the way a
// bug would: an out-of-bounds access (a string pointer past the end of the module's memory).
func TestATrapPoisonsOnlyItsFleet(t *testing.T) {
	f := newFleet(t)
	other := newFleet(t)
	readyNode(t, f, "n1")
	readyNode(t, other, "n1")
	b := f.b.(*wasmBackend)
	must(t, b.enter())
	_, err := b.in.call("nl_fleet_evaluate", b.fleet, 0xFFFF_FFF0, 64, b.in.out(outStruct), b.in.out(outErr))
	var trap trapError
	if !errors.As(err, &trap) {
		b.mu.Unlock()
		t.Fatalf("an out-of-bounds read should trap, got %v", err)
	}
	err = b.leave(err)
	if !errors.Is(err, ErrPoisoned) {
		t.Fatalf("the trap: %v", err)
	}
	for name, call := range map[string]func() error{
		"Evaluate": func() error { _, err := f.Evaluate("n1"); return err },
		"Node":     func() error { _, err := f.Node("n1"); return err },
		"AddContainer": func() error {
			_, err := f.AddContainer("n1", "c", 1)
			return err
		},
		"AuditRecent": func() error { _, err := f.AuditRecent(1); return err },
	} {
		if err := call(); !errors.Is(err, ErrPoisoned) {
			t.Errorf("%s after the trap: %v", name, err)
		}
	}
	if _, err := other.Evaluate("n1"); err != nil {
		t.Fatalf("another fleet after the trap: %v", err)
	}
	must(t, f.Close())
}

// Calls into one instance are serialised; many goroutines on one fleet stay correct (the race
// detector runs this with -tags nl_wasm).
func TestTheWasmBackendIsSafeForConcurrentUse(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "n1")
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				if _, err := f.Evaluate("n1"); err != nil {
					done <- err
					return
				}
				if _, err := f.AddContainer("n1", "c", 1); err != nil {
					done <- err
					return
				}
				if _, err := f.RemoveContainer("n1", "c"); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		must(t, <-done)
	}
}

// BenchmarkCompileModule is what the first New of a process pays on this backend: compiling the
// embedded module, without a compilation cache (the first process on a machine) and from a
// warm cache directory (every later process).
func BenchmarkCompileModule(b *testing.B) {
	ctx := context.Background()
	compile := func(b *testing.B, cache wazero.CompilationCache) {
		cfg := wazero.NewRuntimeConfig()
		if cache != nil {
			cfg = cfg.WithCompilationCache(cache)
		}
		r := wazero.NewRuntimeWithConfig(ctx, cfg)
		defer r.Close(ctx)
		if _, err := r.CompileModule(ctx, wasmModule); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("uncached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			compile(b, nil)
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		warm, err := wazero.NewCompilationCacheWithDir(dir)
		must(b, err)
		compile(b, warm)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// A fresh cache object over the same directory: what a new process sees.
			c, err := wazero.NewCompilationCacheWithDir(dir)
			must(b, err)
			compile(b, c)
		}
	})
}
