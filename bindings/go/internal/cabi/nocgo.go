//go:build !cgo || nl_wasm

// Package cabi is the C compiler's view of include/node_lifecycle.h, for the lifecycle
// package's tests. Without cgo there is no C compiler to ask.
package cabi

// Layout is nil without cgo.
func Layout() map[string]int { return nil }
