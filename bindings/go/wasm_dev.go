//go:build (!cgo || nl_wasm) && nl_dev

package lifecycle

import (
	"embed"
	"errors"
)

// Inside the repository (`make` passes -tags nl_dev): the module `make go-wasm` built from the
// checkout, so tests always run the current source. The directory is embedded, not the file:
// the file is a build product git ignores, and a pattern naming it would make `go mod vendor`
// fail in every module that depends on this one (the committed README keeps the pattern valid).
//
//go:embed wasm/dev
var wasmDev embed.FS

var wasmModule, _ = wasmDev.ReadFile("wasm/dev/node_lifecycle.wasm")

func init() {
	if len(wasmModule) == 0 {
		wasmMissing = errors.New("lifecycle: the WebAssembly module is not built: run `make go-wasm` at the repository's root (or build without -tags nl_dev to use the module shipped with the package)")
	}
}
