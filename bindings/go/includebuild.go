//go:build includebuild

package lifecycle

// This file is never built (no build uses the includebuild tag). It exists for `go mod vendor`,
// which copies only the directories of imported packages: importing the directories that hold
// the shipped libraries and their header makes a vendored copy of this module build with cgo,
// as wasmtime-go does (golang/go#26366).
import (
	_ "github.com/payperplay/node-lifecycle/bindings/go/lib/include"
	_ "github.com/payperplay/node-lifecycle/bindings/go/lib/linux_amd64_gnu"
	_ "github.com/payperplay/node-lifecycle/bindings/go/lib/linux_amd64_musl"
	_ "github.com/payperplay/node-lifecycle/bindings/go/lib/linux_arm64_gnu"
	_ "github.com/payperplay/node-lifecycle/bindings/go/lib/linux_arm64_musl"
)
