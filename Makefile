# The two entry points of the README: `make demo` and `make test`.
# Everything else is a step of those two.

CARGO ?= cargo
CC ?= cc
CFLAGS ?= -std=c11 -Wall -Wextra -Werror -O1 -g
C_LIBS := -lpthread -ldl -lm
STATIC_LIB := target/debug/libnode_lifecycle.a
VALGRIND := valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=1

.PHONY: demo test bootstrap lint rust-test c-test c-example header lib

## Builds the library and plays the four scenarios.
demo:
	$(CARGO) run --quiet --example scenarios

## Runs every test: formatting, lints, Rust tests (including the header check), C tests under
## valgrind.
test: bootstrap lint rust-test c-test

bootstrap:
	./scripts/bootstrap

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings

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
