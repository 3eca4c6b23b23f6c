//go:build cgo && !nl_wasm && !nl_dev && !nl_system && linux && amd64 && nl_musl

package lifecycle

// The static library shipped with the module for linux/amd64 (musl libc, selected by -tags nl_musl),
// built by scripts/build-dist from the source this version was cut from.

// #cgo CFLAGS: -I${SRCDIR}/lib/include -I${SRCDIR}/lib/linux_amd64_musl
// #cgo LDFLAGS: ${SRCDIR}/lib/linux_amd64_musl/libnode_lifecycle.a -lpthread -ldl -lm
// #if !__has_include("node_lifecycle_lib.h")
// #error "node-lifecycle: this copy of the module lacks its library for linux/amd64 (musl); build with CGO_ENABLED=0 (the WebAssembly backend), or inside the repository run make go-lib and build with -tags nl_dev"
// #endif
import "C"
