module github.com/payperplay/node-lifecycle/bindings/go

go 1.24.0

require (
	github.com/tetratelabs/wazero v1.11.0
	golang.org/x/sys v0.38.0
)
