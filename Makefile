# The two commands a newcomer needs: `make demo` runs the product in a sandbox, `make test` runs every check.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test toolchain fmt clippy unit fuzz bench-ci

demo:
	$(CARGO) build --release --locked -p teleport-jira --features demo
	./target/release/teleport-jira demo $(DEMO_FLAGS)

# A CI run builds everything once: incremental state would only double what target/ holds.
ifeq ($(CI),true)
export CARGO_INCREMENTAL := 0
endif

test: toolchain browser-deps fmt clippy deploy-check monitoring-check fuzz bench-ci unit

# CI starts from a fresh machine: make sure the formatter and linter are installed.
toolchain:
	@if command -v rustup >/dev/null; then rustup component add rustfmt clippy; fi

# The demo board's browser test drives Debian's chromium through chromedriver; installs them when
# missing (as root).
.PHONY: browser-deps
browser-deps:
	.ci/browser-deps.sh

fmt:
	$(CARGO) fmt --all -- --check

# The daemon as shipped, and with the demo (the feature the tests build with).
clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy --workspace --all-targets --locked --features teleport-jira/demo -- -D warnings

# Every unit and end-to-end test, then the chaos suite (whose counts are printed), then one
# summary line over all test binaries.
unit:
	@mkdir -p target
	set -o pipefail; $(CARGO) test --workspace --all-targets --locked --features teleport-jira/demo -- --skip chaos 2>&1 | tee target/test-output.log
	set -o pipefail; $(CARGO) test -p teleport-jira --test it --locked --features demo -- chaos --show-output 2>&1 | tee -a target/test-output.log
	@awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "%d passed, %d failed\n", passed, failed }' target/test-output.log

# The parsers fed by others (webhook bodies, identity files, comments, markup), each fuzzed for
# FUZZ_SECONDS; the execution counts are printed.
FUZZ_SECONDS ?= 60
fuzz:
	$(CARGO) run --locked -p teleport-jira --example fuzz -- --seconds $(FUZZ_SECONDS)

# Benchmarks (bench/, see README): the release plugin against the fakes; figures as a table and
# one JSON line. `bench` is the full set (N = 1,000 and 10,000; Jira latency 0 and 100 ms; about
# 15 minutes on 2 cores), `bench-short` the CI-sized one (N = 50; seconds once built).
# `bench-rate-limit` bursts 1,000 requests into a Jira that admits 50 calls/s: with Retry-After,
# without it, then with two replicas of the plugin (about two minutes once built).
# `bench-vs-go` runs every scenario (N = 1,000, Jira latency 100 ms, decisions kept 16 in flight)
# for the release plugin and then for the Go plugin's binary, given as GO_PLUGIN (no default), and
# prints both columns with the ratio: make bench-vs-go GO_PLUGIN=/path/to/teleport-jira
.PHONY: bench bench-short bench-rate-limit bench-vs-go

bench:
	$(CARGO) build --release --locked -p teleport-jira -p bench
	./target/release/teleport-jira-bench ./target/release/teleport-jira

bench-short:
	$(CARGO) build --release --locked -p teleport-jira -p bench
	./target/release/teleport-jira-bench ./target/release/teleport-jira --short

RATE_LIMIT_RUN := ./target/release/teleport-jira-bench ./target/release/teleport-jira --n 1000 --latency-ms 20 --scenarios burst --jira-rate-limit 50
bench-rate-limit:
	$(CARGO) build --release --locked -p teleport-jira -p bench
	$(RATE_LIMIT_RUN)
	$(RATE_LIMIT_RUN) --no-retry-after
	$(RATE_LIMIT_RUN) --replicas 2

bench-vs-go:
	@test -n "$(GO_PLUGIN)" || { echo "bench-vs-go: set GO_PLUGIN to the Go plugin's teleport-jira binary" >&2; exit 2; }
	$(CARGO) build --release --locked -p teleport-jira -p bench
	./target/release/teleport-jira-bench ./target/release/teleport-jira --n 1000 --latency-ms 100 --decisions-in-flight 16 --against "$(GO_PLUGIN)"

# CI keeps the harness from rotting with the debug build it already has (figures from a debug
# build are not the product's; `make bench` measures the release build).
bench-ci:
	$(CARGO) build --locked -p teleport-jira -p bench
	./target/debug/teleport-jira-bench ./target/debug/teleport-jira --short

# Deployment (deploy/README.md). `make install` builds the release binary and installs
# it with its systemd unit, the unit's account (sysusers.d) and, if there is none yet, an example
# config at /etc/teleport-jira.toml (mode 600). DESTDIR stages it elsewhere; INSTALL_PROFILE=dev
# installs the debug build.
.PHONY: install deploy-check helm-tool

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSTEMD_UNIT_DIR ?= /etc/systemd/system
SYSUSERS_DIR ?= /etc/sysusers.d
INSTALL_PROFILE ?= release

install:
	$(CARGO) build --locked -p teleport-jira --profile $(INSTALL_PROFILE)
	DESTDIR="$(DESTDIR)" BINDIR="$(BINDIR)" SYSTEMD_UNIT_DIR="$(SYSTEMD_UNIT_DIR)" SYSUSERS_DIR="$(SYSUSERS_DIR)" \
		deploy/install.sh target/$(if $(filter dev,$(INSTALL_PROFILE)),debug,$(INSTALL_PROFILE))/teleport-jira

# The chart (helm lint and template, manifests decoded strictly into Kubernetes' types, the
# generated config through `teleport-jira check`), the systemd unit (systemd-analyze) and the
# install step, without a cluster or a container engine. helm is built once into
# target/tools/bin (`make helm-tool`).
deploy-check:
	CARGO="$(CARGO)" deploy/check.sh

helm-tool:
	deploy/check.sh tools

# The alert rules and the Grafana dashboard (deploy/monitoring/) checked by Prometheus' own
# promtool: the rules and their unit tests, the chart's copy of them, and a scrape of the running
# plugin. Installs promtool (Debian's prometheus package) when missing (as root).
.PHONY: monitoring-check
monitoring-check:
	.ci/promtool-deps.sh
	CARGO="$(CARGO)" deploy/monitoring/check.sh

# Python's `jira` client library drives FakeJira (crates/testkit/clients/jira-python); `make unit`
# runs it too. Needs python3 with pip; the pinned packages install once under target/jira-python.
.PHONY: jira-client
jira-client:
	$(CARGO) test --locked -p testkit --test jira_client_library
