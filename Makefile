# The two entry points of the README: `make demo` and `make test`.
# Everything else is a step of those two.

CARGO ?= cargo
CC ?= cc
CFLAGS ?= -std=c11 -Wall -Wextra -Werror -O1 -g
C_LIBS := -lpthread -ldl -lm
STATIC_LIB := target/debug/libnode_lifecycle.a
VALGRIND := valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=1 --suppressions=tests/c/valgrind.supp

.PHONY: demo test bootstrap lint rust-test c-test c-example header lib go-lib go-test go-demo ops-test reliability miri fuzz-smoke go-asan

## Builds the library and plays the four scenarios: in Rust, then from Go as the conductor would.
demo: go-lib
	$(CARGO) run --quiet --example scenarios
	@echo
	@echo "=== The same scenarios from Go, driven the way the conductor drives them ==="
	cd bindings/go && go run ./examples/conductor

## Runs every test: formatting, lints, Rust tests (including the header check), C tests under
## valgrind, Go tests under the race detector (PostgreSQL ones against a private server), the
## operations sub-packages, and the reliability checks (Miri, a fuzz smoke run, Go under ASan).
test: bootstrap lint rust-test c-test go-test ops-test reliability

bootstrap:
	./scripts/bootstrap

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	@test -z "$$(gofmt -l bindings/go)" || { echo "gofmt would change:"; gofmt -l bindings/go; exit 1; }

rust-test:
	$(CARGO) test --quiet

lib:
	$(CARGO) build --quiet --lib

target/c/ffi_test: tests/c/ffi_test.c include/node_lifecycle.h lib
	@mkdir -p target/c
	$(CC) $(CFLAGS) -Iinclude tests/c/ffi_test.c $(STATIC_LIB) $(C_LIBS) -o $@

c-test: target/c/ffi_test
	$(VALGRIND) target/c/ffi_test

c-example: lib
	@mkdir -p target/c
	$(CC) $(CFLAGS) -Iinclude examples/c/decommission.c $(STATIC_LIB) $(C_LIBS) -o target/c/decommission
	$(VALGRIND) target/c/decommission

## Regenerates include/node_lifecycle.h from src/ffi (review the diff before committing).
header:
	NL_WRITE_HEADER=1 $(CARGO) build --quiet --lib

## The static library the Go package links (bindings/go/link_local.go).
go-lib:
	$(CARGO) build --quiet --release --lib

go-test: go-lib
	cd bindings/go && go vet ./... && go test -race -count=1 ./...
	cd bindings/go/pgaudit && go vet ./...
	NL_REQUIRE_PG=1 ./scripts/with-postgres sh -c 'cd bindings/go/pgaudit && go test -race -count=1 ./...'

ops-test: go-lib
	cd bindings/go/ops && go vet ./... && go test -race -count=1 ./...

reliability: miri fuzz-smoke go-asan

## Miri over the pure core (no file I/O, no FFI: Miri cannot run those).
miri:
	@if cargo +nightly miri --version >/dev/null 2>&1; then \
	  MIRIFLAGS=-Zmiri-strict-provenance cargo +nightly miri test --quiet --lib -- state:: safety:: audit:: policy:: node:: metrics:: clock:: reason:: planning::; \
	else echo "miri: SKIPPED: no nightly toolchain with Miri on this machine" >&2; fi

fuzz-smoke:
	./scripts/fuzz-smoke

## The Go tests' cgo path under AddressSanitizer + LeakSanitizer (which also watch the Rust
## library's malloc/free).
go-asan: go-lib
	cd bindings/go && go test -asan -short -count=1 .
