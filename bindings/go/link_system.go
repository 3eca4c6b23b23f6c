//go:build cgo && !nl_wasm && !nl_dev && nl_system

package lifecycle

// With -tags nl_system the package links an installed library: node_lifecycle.h on the include
// path and libnode_lifecycle (static or shared) on the library path, e.g. via
// CGO_CFLAGS=-I/usr/local/include CGO_LDFLAGS=-L/usr/local/lib (see README.md, "Installing").

// #cgo LDFLAGS: -lnode_lifecycle -lpthread -ldl -lm
import "C"
