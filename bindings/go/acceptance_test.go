package lifecycle_test

import (
	"testing"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
	"github.com/payperplay/node-lifecycle/bindings/go/lifecycletest"
)

// memoryBackend keeps each fleet in memory; it cannot restart.
type memoryBackend struct{}

func (memoryBackend) Open(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	f, err := lifecycle.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (memoryBackend) Reopen(*testing.T, lifecycle.Options) *lifecycle.Fleet { return nil }

// dirBackend keeps each fleet in a data directory.
type dirBackend struct{ dir string }

func (b *dirBackend) Open(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	b.dir = t.TempDir()
	return b.Reopen(t, o)
}

func (b *dirBackend) Reopen(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	o.DataDir = b.dir
	f, err := lifecycle.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAcceptanceInMemory(t *testing.T) { lifecycletest.Run(t, memoryBackend{}) }

func TestAcceptanceDataDirectory(t *testing.T) { lifecycletest.Run(t, &dirBackend{}) }
