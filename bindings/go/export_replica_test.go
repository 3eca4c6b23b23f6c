//go:build !cgo || nl_wasm

package lifecycle

// IsShared reports whether a fleet runs over the replica layer.
func IsShared(f *Fleet) bool {
	_, ok := f.b.(*replicaBackend)
	return ok
}
