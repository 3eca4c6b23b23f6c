//go:build cgo && !nl_wasm && !nl_dev

package cabi

// Outside the repository: the header shipped with the module's libraries.

// #cgo CFLAGS: -I${SRCDIR}/../../lib/include
import "C"
