# The two commands a newcomer needs: `make demo` runs the product in a sandbox, `make test` runs every check.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test toolchain fmt clippy unit fuzz

demo:
	$(CARGO) build --release --locked -p teleport-jira -p testkit
	./target/release/teleport-jira-demo ./target/release/teleport-jira

test: toolchain fmt clippy unit fuzz

# CI starts from a fresh machine: make sure the formatter and linter are installed.
toolchain:
	@if command -v rustup >/dev/null; then rustup component add rustfmt clippy; fi

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Every unit and end-to-end test, then the chaos suite (whose counts are printed), then one
# summary line over all test binaries.
unit:
	@mkdir -p target
	set -o pipefail; $(CARGO) test --workspace --all-targets --locked -- --skip chaos 2>&1 | tee target/test-output.log
	set -o pipefail; $(CARGO) test -p teleport-jira --test it --locked -- chaos --show-output 2>&1 | tee -a target/test-output.log
	@awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "%d passed, %d failed\n", passed, failed }' target/test-output.log

# The parsers fed by others (webhook bodies, identity files, comments, markup), each fuzzed for
# FUZZ_SECONDS; the execution counts are printed.
FUZZ_SECONDS ?= 60
fuzz:
	$(CARGO) run --locked -p teleport-jira --example fuzz -- --seconds $(FUZZ_SECONDS)
