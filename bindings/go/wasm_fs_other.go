//go:build (!cgo || nl_wasm) && !linux && !darwin && !freebsd

package lifecycle

// diskIsFull cannot ask this platform's file systems; a full disk stays the module's EIO.
func diskIsFull(string) bool { return false }
