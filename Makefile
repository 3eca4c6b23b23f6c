# The two entry points of the README: `make demo` and `make test`.
# Everything else is a step of those two.

CARGO ?= cargo
CC ?= cc
CFLAGS ?= -std=c11 -Wall -Wextra -Werror -O1 -g
C_LIBS := -lpthread -ldl -lm
STATIC_LIB := target/debug/libnode_lifecycle.a
VALGRIND := valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=1

.PHONY: demo test bootstrap lint rust-test c-test c-example header lib go-lib go-test go-demo

## Builds the library and plays the four scenarios: in Rust, then from Go as the conductor would.
demo: go-lib
	$(CARGO) run --quiet --example scenarios
	@echo
	@echo "=== The same scenarios from Go, driven the way the conductor drives them ==="
	cd bindings/go && go run ./examples/conductor

## Runs every test: formatting, lints, Rust tests (including the header check), C tests under
## valgrind, Go tests under the race detector (PostgreSQL ones against a private server).
test: bootstrap lint rust-test c-test go-test

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
