#!/usr/bin/env bash
# Checks deploy/monitoring/ with Prometheus' own tool, promtool (`make monitoring-check`):
#
#   rules      promtool check rules: the alert rules parse and their templates render.
#   tests      promtool test rules teleport-jira.rules.test.yml, after making sure every alert
#              has a case in which it fires and one in which it is quiet.
#   chart      the Helm chart's copy of the rules (its PrometheusRule) is this file, unchanged.
#   plugin     the end-to-end tests in crates/teleport-jira/tests/it/monitoring.rs: promtool
#              check metrics on a scrape of the running plugin, every dashboard query parses,
#              and the rules and the dashboard read only series the plugin serves.
#
# promtool comes from Debian's prometheus package; .ci/promtool-deps.sh installs it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
rules=deploy/monitoring/teleport-jira.rules.yml
tests=deploy/monitoring/teleport-jira.rules.test.yml
chart_copy=deploy/helm/teleport-jira/files/teleport-jira.rules.yml
cargo=${CARGO:-cargo}

step() { printf '\n== %s\n' "$*"; }
fail() { echo "monitoring-check: $*" >&2; exit 1; }

command -v promtool >/dev/null ||
    fail "promtool is not installed; .ci/promtool-deps.sh (run by make test, as root) installs it"
promtool --version 2>&1 | sed -n 1p

step "rules: promtool check rules"
promtool check rules "$rules"

step "tests: every alert fires and is quiet in a case, then promtool test rules"
# An alert_rule_test entry names its alert, then either expects nothing (`exp_alerts: []`) or
# lists what fires (`exp_labels:`).
covered=$(awk '
    /^ *alertname:/ { name = $2 }
    /exp_alerts: \[\]/ { quiet[name] = 1 }
    /exp_labels:/ { fires[name] = 1 }
    END { for (name in fires) if (name in quiet) print name }' "$tests")
alerts=$(sed -n 's/^ *- alert: *//p' "$rules")
[[ -n $alerts ]] || fail "no alert found in $rules"
for alert in $alerts; do
    grep -qx "$alert" <<<"$covered" ||
        fail "$alert needs a case in $tests in which it fires and one in which it does not"
done
echo "$(wc -w <<<"$alerts") alerts, each fired and cleared by a case"
promtool test rules "$tests"

step "chart: the PrometheusRule carries these rules"
cmp -s "$rules" "$chart_copy" ||
    fail "$chart_copy differs from $rules; copy it again (cp $rules $chart_copy)"
echo "$chart_copy is $rules"

step "plugin: promtool on a scrape of the running plugin, the dashboard's queries"
$cargo test -p teleport-jira --test it --locked -- monitoring::
