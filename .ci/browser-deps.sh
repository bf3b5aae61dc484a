#!/usr/bin/env bash
# The headless browser the board's browser test drives: Debian's chromium and chromium-driver.
# Does nothing when both are installed; otherwise installs them (needs root, as CI runs).
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "chromium and chromedriver are missing; run $0 as root to install them" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium chromium-driver
