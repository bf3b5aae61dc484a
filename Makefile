# The two commands a newcomer needs: `make demo` runs the product in a sandbox, `make test` runs every check.
CARGO ?= cargo

.PHONY: demo test toolchain fmt clippy unit build

demo:
	$(CARGO) build --release --locked -p teleport-jira -p testkit
	./target/release/teleport-jira-demo ./target/release/teleport-jira

test: toolchain fmt clippy unit

# CI starts from a fresh machine: make sure the formatter and linter are installed.
toolchain:
	@command -v rustup >/dev/null && rustup component add rustfmt clippy >/dev/null 2>&1 || true

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked
