//go:build (!cgo || nl_wasm) && windows

package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// lockDir takes the exclusive lock of a data directory for the WebAssembly backend: a LOCK
// file in it, locked with LockFileEx while the fleet is open (the native library does the same
// on Windows).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, &Error{Code: CodeStorage, Message: fmt.Sprintf("storage error: locking %s: %v", dir, err)}
	}
	var ol windows.Overlapped
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if err != nil {
		_ = f.Close()
		return nil, &Error{Code: CodeLocked, Message: fmt.Sprintf("data directory %s is locked by another process", dir)}
	}
	return func() { _ = f.Close() }, nil
}
