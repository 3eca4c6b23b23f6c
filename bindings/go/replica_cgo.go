//go:build cgo && !nl_wasm

package lifecycle

// openReplica: a shared fleet's files reach the store through the WebAssembly engine's file
// system (replica_fs.go), which this build does not include.
func openReplica(Options, []byte) (backend, error) {
	return nil, &Error{Code: CodeInvalidArgument, Message: "Options.Shared needs the WebAssembly backend: build with CGO_ENABLED=0 or -tags nl_wasm (this build links the native library)"}
}
