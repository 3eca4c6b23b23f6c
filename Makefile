# The two entry points of the README: `make demo` and `make test`.
# Everything else is a step of those two.
#
# Inside the repository the Go package is always built with -tags nl_dev: it links the library
# (cgo) or embeds the module (WebAssembly) that this checkout just built, never the prebuilt
# copies shipped in bindings/go/lib and bindings/go/wasm. `make dist-check` tests those.

CARGO ?= cargo
CC ?= cc
CFLAGS ?= -std=c11 -Wall -Wextra -Werror -O1 -g
C_LIBS := -lpthread -ldl -lm
STATIC_LIB := target/debug/libnode_lifecycle.a
VALGRIND := valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=1 --suppressions=tests/c/valgrind.supp
SUITE := ./scripts/run-suite
GO_DEV := -tags nl_dev
# The WebAssembly backend with cgo on (the race detector needs cgo).
GO_WASM := -tags nl_wasm,nl_dev

.PHONY: demo test check test-start test-summary bootstrap lint rust-test c-test c-example header lib \
	go-lib go-wasm go-test ops-test pgaudit-test pgstore-test dist dist-check reliability miri fuzz-smoke go-asan

## Builds the library and plays the four scenarios: in Rust, then from Go as the conductor would.
demo: go-lib
	$(CARGO) run --quiet --example scenarios
	@echo
	@echo "=== The same scenarios from Go, driven the way the conductor drives them ==="
	cd bindings/go && go run $(GO_DEV) ./examples/conductor

## Runs every test: formatting, lints, Rust tests (including the header check), C tests under
## valgrind, the Go package on both backends (cgo and WebAssembly) under the race detector,
## the ops and pgaudit modules (PostgreSQL ones against a private server), the shipped
## libraries' provenance and platform recipes, and the reliability checks (Miri, a fuzz smoke
## run, Go under ASan). Each suite prints one summary line; the last lines sum them up.
test: test-start bootstrap lint rust-test c-test go-test ops-test pgaudit-test pgstore-test dist-check reliability test-summary

## The fast loop while working (a couple of minutes once built): formatting, lints, the Rust
## tests and the Go package's tests on the native backend (no race detector, -short). It
## installs nothing: run `make test` once first on a new machine.
check: test-start lint rust-test go-lib
	@$(SUITE) "go (cgo, -short)" sh -c 'cd bindings/go && go vet $(GO_DEV) . && go test $(GO_DEV) -short -count=1 -v .'
	@$(SUITE) --summary

test-start:
	@$(SUITE) --reset

test-summary:
	@$(SUITE) --summary

bootstrap:
	@$(SUITE) "bootstrap" ./scripts/bootstrap

lint:
	@$(SUITE) "rustfmt" $(CARGO) fmt --check
	@$(SUITE) "clippy" $(CARGO) clippy --all-targets --quiet -- -D warnings
	@$(SUITE) "gofmt" sh -c 'test -z "$$(gofmt -l bindings/go scripts)" || { echo "gofmt would change:"; gofmt -l bindings/go scripts; exit 1; }'

rust-test:
	@$(SUITE) "rust" $(CARGO) test

lib:
	$(CARGO) build --quiet --lib

target/c/ffi_test: tests/c/ffi_test.c include/node_lifecycle.h lib
	@mkdir -p target/c
	$(CC) $(CFLAGS) -Iinclude tests/c/ffi_test.c $(STATIC_LIB) $(C_LIBS) -o $@

c-test: target/c/ffi_test
	@$(SUITE) "C ABI (valgrind)" $(VALGRIND) target/c/ffi_test

c-example: lib
	@mkdir -p target/c
	$(CC) $(CFLAGS) -Iinclude examples/c/decommission.c $(STATIC_LIB) $(C_LIBS) -o target/c/decommission
	$(VALGRIND) target/c/decommission

## Regenerates include/node_lifecycle.h from src/ffi (review the diff before committing).
header:
	NL_WRITE_HEADER=1 $(CARGO) build --quiet --lib

## The static library the Go package links with -tags nl_dev (bindings/go/link_dev.go), and the
## marker header link_dev.go checks so that a missing build names this target.
go-lib:
	$(CARGO) build --quiet --release --lib
	@mkdir -p target/release/nl-go
	@echo '/* written by make go-lib */' >target/release/nl-go/node_lifecycle_built.h

## The WebAssembly module the Go package embeds with -tags nl_dev (bindings/go/wasm_dev.go).
go-wasm:
	$(CARGO) build --quiet --release --lib --target wasm32-wasip1
	@mkdir -p bindings/go/wasm/dev
	@cp target/wasm32-wasip1/release/node_lifecycle.wasm bindings/go/wasm/dev/node_lifecycle.wasm

go-test: go-lib go-wasm
	@$(SUITE) "go vet" sh -c 'cd bindings/go && go vet $(GO_DEV) ./... && CGO_ENABLED=0 go vet $(GO_DEV) ./...'
	@$(SUITE) "go (cgo, race)" sh -c 'cd bindings/go && go test $(GO_DEV) -race -count=1 -v ./...'
	@$(SUITE) "go (wasm, CGO_ENABLED=0)" sh -c 'cd bindings/go && CGO_ENABLED=0 go test $(GO_DEV) -count=1 -v ./...'
	@$(SUITE) "go (wasm, race, -short)" sh -c 'cd bindings/go && go test $(GO_WASM) -race -short -count=1 -v .'
	@$(SUITE) "go (wasm, shared store: acceptance, conductor)" sh -c 'cd bindings/go && NL_TEST_SHARED=1 CGO_ENABLED=0 go test $(GO_DEV) -run "TestAcceptance|TestConductor|TestSharedTestModeIsOn" -count=1 -v .'

ops-test: go-lib go-wasm
	@$(SUITE) "ops (cgo, race)" sh -c 'cd bindings/go/ops && go vet $(GO_DEV) ./... && go test $(GO_DEV) -race -count=1 -v ./...'
	@$(SUITE) "ops (wasm, CGO_ENABLED=0)" sh -c 'cd bindings/go/ops && CGO_ENABLED=0 go test $(GO_DEV) -count=1 -v ./...'

pgaudit-test: go-lib go-wasm
	@$(SUITE) "pgaudit (cgo, race)" env NL_REQUIRE_PG=1 ./scripts/with-postgres sh -c 'cd bindings/go/pgaudit && go vet $(GO_DEV) ./... && go test $(GO_DEV) -race -count=1 -v ./...'
	@$(SUITE) "pgaudit (wasm, CGO_ENABLED=0)" env NL_REQUIRE_PG=1 NL_PG_PORT=54330 ./scripts/with-postgres sh -c 'cd bindings/go/pgaudit && CGO_ENABLED=0 go test $(GO_DEV) -count=1 -v ./...'

## Replicas sharing a fleet in PostgreSQL: lease races, a killed leader, a partitioned leader,
## a store outage, claims racing decommissions across replicas. WebAssembly backend only (the
## shared store's seam is its file system), with cgo for the race detector and without.
pgstore-test: go-lib go-wasm
	@$(SUITE) "pgstore (wasm, race)" env NL_REQUIRE_PG=1 NL_PG_PORT=54331 ./scripts/with-postgres sh -c 'cd bindings/go/pgstore && go vet $(GO_WASM) ./... && go test $(GO_WASM) -race -count=1 -v ./...'
	@$(SUITE) "pgstore (wasm, CGO_ENABLED=0)" env NL_REQUIRE_PG=1 NL_PG_PORT=54332 ./scripts/with-postgres sh -c 'cd bindings/go/pgstore && CGO_ENABLED=0 go test $(GO_DEV) -count=1 -v ./...'

## Rebuilds the libraries and the module shipped with the Go module (only when cutting a
## version: see docs/DISTRIBUTION.md).
dist:
	./scripts/build-dist

## Checks the shipped artifacts: built from this source, Go tests pass against them, the static
## musl recipe, arm64 under emulation, cgo-free cross builds, and `go get` from a module proxy.
dist-check: go-lib
	@$(SUITE) "dist" ./scripts/check-dist

reliability: miri fuzz-smoke go-asan

## Miri over the pure core (no file I/O, no FFI: Miri cannot run those).
miri:
	@$(SUITE) "miri" ./scripts/miri

fuzz-smoke:
	@$(SUITE) "fuzz smoke" ./scripts/fuzz-smoke

## The Go tests' cgo path under AddressSanitizer + LeakSanitizer (which also watch the Rust
## library's malloc/free).
go-asan: go-lib
	@$(SUITE) "go (cgo, asan, -short)" sh -c 'cd bindings/go && go test $(GO_DEV) -asan -short -count=1 -v .'
