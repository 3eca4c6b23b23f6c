//go:build cgo && !nl_wasm && nl_dev

package cabi

// Inside the repository: the header of this checkout.

// #cgo CFLAGS: -I${SRCDIR}/../../../../include
import "C"
