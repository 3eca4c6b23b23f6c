//go:build !cgo || nl_wasm

package lifecycle_test

import (
	"os"
	"sync"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
	"github.com/payperplay/node-lifecycle/bindings/go/lifecycletest"
)

// sharedBackend keeps each fleet in an in-memory shared store, one replica at a time.
type sharedBackend struct{ store *lifecycletest.MemStore }

func (b *sharedBackend) Open(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	b.store = lifecycletest.NewMemStore()
	return b.Reopen(t, o)
}

func (b *sharedBackend) Reopen(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	o.Shared = &lifecycle.Replication{Store: b.store, ReplicaID: "conductor", LeaseTTL: time.Hour, Poll: time.Second}
	f, err := lifecycle.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAcceptanceSharedStore(t *testing.T) { lifecycletest.Run(t, &sharedBackend{}) }

// With NL_TEST_SHARED=1 every fleet the package's tests open is a shared one over an in-memory
// store, one store per data directory (so a reopen finds what the last Close left) and a fresh
// one for each in-memory fleet: `make test` runs the scenario and conductor suites this way.
func init() {
	if os.Getenv("NL_TEST_SHARED") == "" {
		return
	}
	var mu sync.Mutex
	stores := map[string]*lifecycletest.MemStore{}
	lifecycle.SetSharedForTests(func(o *lifecycle.Options) {
		if o.Shared != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		key := o.DataDir
		s := stores[key]
		if s == nil || key == "" {
			s = lifecycletest.NewMemStore()
			stores[key] = s
		}
		o.DataDir = ""
		o.Shared = &lifecycle.Replication{Store: s, ReplicaID: "conductor", LeaseTTL: time.Hour, Poll: time.Second}
	})
}

// The shared-store run of the acceptance suites really runs them over the replica layer.
func TestSharedTestModeIsOn(t *testing.T) {
	if os.Getenv("NL_TEST_SHARED") == "" {
		t.Skip("NL_TEST_SHARED is not set")
	}
	f, err := lifecycle.New(lifecycle.Options{DataDir: t.TempDir()})
	must(t, err)
	defer f.Close()
	if !lifecycle.IsShared(f) || !f.IsLeader() {
		t.Fatal("the fleet is not a shared one")
	}
}
