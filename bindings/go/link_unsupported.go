//go:build cgo && !nl_wasm && !nl_dev && !nl_system && !(linux && (amd64 || arm64))

package lifecycle

// No library is shipped for this platform. Build with CGO_ENABLED=0 (or -tags nl_wasm) for the
// WebAssembly backend, which runs everywhere Go does, or install the library and build with
// -tags nl_system (see README.md, "Installing").
var _ = node_lifecycle_ships_no_native_library_for_this_platform_build_with_CGO_ENABLED_0_or_tags_nl_system
