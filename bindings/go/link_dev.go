//go:build cgo && !nl_wasm && nl_dev

package lifecycle

// Inside the repository (`make` passes -tags nl_dev): link the static library `make go-lib`
// builds from the checkout, so tests always run the current source. `make go-lib` also writes
// the marker header checked below, so a missing build is a clear error instead of a linker's.

// #cgo CFLAGS: -I${SRCDIR}/../../include -I${SRCDIR}/../../target/release/nl-go
// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libnode_lifecycle.a -lpthread -ldl -lm
// #if !__has_include("node_lifecycle_built.h")
// #error "node-lifecycle: the library is not built: run `make go-lib` at the repository's root (or build without -tags nl_dev to use the library shipped with the module)"
// #endif
import "C"
