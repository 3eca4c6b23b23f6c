//go:build (!cgo || nl_wasm) && !unix && !windows

package lifecycle

import "fmt"

// lockDir: this platform offers the WebAssembly backend no file lock, and a data directory
// shared by two processes unnoticed would lose writes, so persistence is refused.
func lockDir(dir string) (func(), error) {
	return nil, &Error{Code: CodeStorage, Message: fmt.Sprintf("storage error: %s: this platform has no directory lock; use an in-memory fleet", dir)}
}
