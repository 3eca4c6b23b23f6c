//go:build cgo && !nl_wasm && !nl_system

package lifecycle

// By default the package links the static library that `cargo build --release` leaves in this
// repository's target directory (`make go-lib` builds it). Build with `-tags nl_system` to link
// an installed libnode_lifecycle instead (see README.md).

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: ${SRCDIR}/../../target/release/libnode_lifecycle.a -lpthread -ldl -lm
import "C"
