# The two entry points of the README: `make demo` and `make test`.
# Everything else is a step of those two.

CARGO ?= cargo

.PHONY: demo test bootstrap rust-test lint

## Builds the library and plays the four scenarios.
demo:
	$(CARGO) run --quiet --example scenarios

## Runs every test: formatting, lints, Rust unit/integration/property tests.
test: bootstrap lint rust-test

bootstrap:
	./scripts/bootstrap

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings

rust-test:
	$(CARGO) test --quiet
