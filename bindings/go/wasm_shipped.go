//go:build (!cgo || nl_wasm) && !nl_dev

package lifecycle

import _ "embed"

// The module shipped with this version of the package, built by scripts/build-dist from the
// source the version was cut from (dist.json, beside go.mod, records its fingerprint).
//
//go:embed wasm/node_lifecycle.wasm
var wasmModule []byte
