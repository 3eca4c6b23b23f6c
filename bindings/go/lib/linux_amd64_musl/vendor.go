// Package linux_amd64_musl holds files the lifecycle package links (cgo). It has no Go code: this
// file makes it a package, so that `go mod vendor` copies the directory (golang/go#26366;
// see includebuild.go).
package linux_amd64_musl
