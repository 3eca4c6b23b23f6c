//go:build (!cgo || nl_wasm) && unix

package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockDir takes the exclusive lock of a data directory for the WebAssembly backend (WASI has
// no locks, so the host holds it): flock on an open descriptor of the directory itself, as the
// native library does, so deleting a file in it cannot defeat the lock. Like the library, it
// waits briefly for a lock that a forked child may still share before reporting ErrLocked.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, &Error{Code: CodeStorage, Message: fmt.Sprintf("storage error: locking %s: %v", dir, err)}
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &Error{Code: CodeLocked, Message: fmt.Sprintf("data directory %s is locked by another process", dir)}
			}
			return nil, &Error{Code: CodeStorage, Message: fmt.Sprintf("storage error: locking %s: %v", dir, err)}
		}
		time.Sleep(5 * time.Millisecond)
	}
}
