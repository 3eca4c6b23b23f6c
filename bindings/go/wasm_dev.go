//go:build (!cgo || nl_wasm) && nl_dev

package lifecycle

import _ "embed"

// Inside the repository (`make` passes -tags nl_dev): the module `make go-wasm` built from the
// checkout, so tests always run the current source.
//
//go:embed wasm/dev/node_lifecycle.wasm
var wasmModule []byte
