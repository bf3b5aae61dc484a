#!/usr/bin/env bash
# Prometheus' own checker, promtool, which `make monitoring-check` runs on deploy/monitoring/ and on
# a scrape of the plugin: Debian's prometheus package ships it. Does nothing when promtool is
# installed; otherwise installs the package (needs root, as CI runs). Recommends are skipped:
# only the binary is wanted, not the exporters and the web console.
set -euo pipefail

if command -v promtool >/dev/null; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "promtool is missing; run $0 as root to install Debian's prometheus package" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends prometheus
command -v promtool >/dev/null || { echo "the prometheus package installed no promtool" >&2; exit 1; }
