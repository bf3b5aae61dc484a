#!/usr/bin/env bash
# Checks what deploy/ ships, without a cluster, a container engine or a running systemd:
#
#   chart     helm lint --strict, then helm template with the default values and each
#             deploy/helm/teleport-jira/ci/*-values.yaml; every rendered document is decoded
#             strictly into its Kubernetes API type and the objects are checked against each
#             other (deploy/helm/check), a PrometheusRule against deploy/monitoring's rules;
#             NOTES.txt renders; the generated TOML passes the plugin's own `teleport-jira
#             check` up to the point where it needs a real Teleport and Jira (all addresses
#             are on loopback, nothing leaves the machine). No secret of the values (the Jira
#             token, the webhook secret, the basic-auth password) may appear in a rendered
#             object other than a Secret, nor in NOTES.txt; a self-test makes sure a leak fails.
#   systemd   systemd-analyze verify and an offline security review of the unit.
#   install   make install into a scratch DESTDIR, the files it leaves, and that a second run
#             keeps an existing config.
#   versions  the chart's appVersion, the Containerfile's Rust and what it copies follow
#             Cargo.toml.
#
#   deploy/check.sh          all of the above
#   deploy/check.sh tools    only install helm and build the validator (target/tools/bin)
#
# helm is built from source with `go install` at a pinned version, once; the validator is a Go
# module of ours. Both land in target/tools/bin.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
helm_version=v3.19.0
tools="$root/target/tools/bin"
helm="$tools/helm"
validator="$tools/deploy-check"
chart=deploy/helm/teleport-jira
# The alert rules the chart's PrometheusRule must carry unchanged.
rules=deploy/monitoring/teleport-jira.rules.yml
work="$root/target/deploy-check"
cargo=${CARGO:-cargo}
# The exposure score (0-10) of the unit that the offline review may not exceed, times ten.
max_exposure=20

step() { printf '\n== %s\n' "$*"; }
fail() { echo "deploy-check: $*" >&2; exit 1; }

install_tools() {
    command -v go >/dev/null || fail "Go is needed to build helm and the manifest validator"
    mkdir -p "$tools"
    if go version -m "$helm" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+helm.sh/helm/v3[[:space:]]+$helm_version([[:space:]]|$)"; then
        echo "helm $helm_version: already in target/tools/bin"
    else
        echo "helm $helm_version: building from source (go install), once"
        local started=$SECONDS
        GOBIN="$tools" go install "helm.sh/helm/v3/cmd/helm@$helm_version"
        echo "helm $helm_version: built in $((SECONDS - started))s"
    fi
    go build -C deploy/helm/check -o "$validator" .
}

# check_config NAME TOML ARGS: runs `teleport-jira check` on the TOML the chart generated, with
# the pod's files (/var/lib/teleport/plugins/jira) replaced by stand-ins in a scratch directory:
# placeholder secrets, an identity file that is not one, and a throwaway TLS certificate.
# Passing means: the config loads with no warning (no unknown key), the webhook's TLS files
# load, and the only failures are those of the stand-in identity and of the absent Jira and
# Teleport.
check_config() {
    local name=$1 toml=$2 args=$3
    local files="$work/$name/files" config="$work/$name/teleport-jira.toml"
    rm -rf "$files" && mkdir -p "$files/teleport-identity" "$files/tls"
    sed "s|/var/lib/teleport/plugins/jira|$files|g" "$toml" >"$config"
    # Only loopback addresses: the check must never reach out of the machine.
    if grep -E '^[[:space:]]*(addr|url)[[:space:]]*=' "$config" | grep -Ev '"(https://)?(127\.0\.0\.1|localhost)(:[0-9]+)?(/[^"]*)?"'; then
        fail "$name: the values file must use loopback addresses for Teleport and Jira"
    fi
    local key
    for key in "$files/teleport-identity/auth_id" "$files/teleport-identity/identity"; do
        echo "not an identity file" >"$key"
    done
    # What the pod's secrets volume shows (from the chart's Secret or an existing one).
    mkdir -p "$files/secrets"
    echo "not-a-real-token" >"$files/secrets/api_token"
    echo "not-a-real-secret" >"$files/secrets/webhook_secret"
    echo "not-a-real-password" >"$files/secrets/basic_auth_password"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=localhost -keyout "$files/tls/tls.key" -out "$files/tls/tls.crt" 2>/dev/null
    chmod -R go-rwx "$files"
    local flags=()
    grep -qx -- --insecure-no-tls "$args" && flags+=(--insecure-no-tls)
    local output
    output=$(timeout 120 "$plugin" check -c "$config" "${flags[@]}" 2>&1) || true
    # shellcheck disable=SC2001 # indent every line
    sed 's/^/    /' <<<"$output"
    grep -Eq "^OK +config: .* is valid$" <<<"$output" ||
        fail "$name: the plugin does not accept the generated config as is (see above)"
    grep -Eq "^OK +webhook:" <<<"$output" ||
        fail "$name: the plugin cannot serve the webhook with the generated config (see above)"
    local unexpected
    unexpected=$(grep -E '^FAIL' <<<"$output" | grep -Ev '^FAIL (credentials|teleport|teleport role|jira): ' || true)
    [[ -z $unexpected ]] || fail "$name: unexpected failures: $unexpected"
    grep -E '^FAIL jira: ' <<<"$output" | grep -qv 'cannot connect' &&
        fail "$name: Jira failed for another reason than the absent server"
    return 0
}

# render_notes VALUES...: NOTES.txt is rendered only on install; render a copy of the chart in
# which it is an ordinary template, and check the text.
render_notes() {
    local copy="$work/notes-chart"
    rm -rf "$copy" && cp -R "$chart" "$copy"
    mv "$copy/templates/NOTES.txt" "$copy/NOTES.src"
    # shellcheck disable=SC2016
    printf '%s\n' 'notes: {{ tpl (.Files.Get "NOTES.src") . | toJson }}' >"$copy/templates/zz-notes.yaml"
    "$helm" template r "$copy" --namespace plugins "$@" --show-only templates/zz-notes.yaml >"$work/notes.yaml"
    "$validator" notes "$work/notes.yaml" >"$work/notes.txt"
}

# The values that are secrets: the chart may write them into a Secret and nowhere else.
secret_keys=jira.apiToken,http.webhookSecret,http.basicAuth.password
secrets_dir=/var/lib/teleport/plugins/jira/secrets

# check_secrets NAME RENDERED NOTES FLAGS VALUES...: no secret value of the values files (the
# chart's defaults, then VALUES) appears outside a Secret, in RENDERED or in the NOTES text.
check_secrets() {
    local name=$1 rendered=$2 notes=$3 flags=$4
    shift 4
    local values_files=(-values "$chart/values.yaml") file
    for file in "$@"; do values_files+=(-values "$file"); done
    local status=0
    # shellcheck disable=SC2086 # flags are words by design
    "$validator" secrets "${values_files[@]}" -keys "$secret_keys" -notes "$notes" $flags "$rendered" \
        >"$work/$name/secrets.txt" 2>&1 || status=$?
    sed 's/^ *//; s/^/    secrets: /' "$work/$name/secrets.txt"
    ((status == 0)) || fail "$name: a secret of the values is misplaced (see above)"
}

check_chart() {
    step "chart: helm lint --strict, helm template, strict decoding, the plugin's config check"
    cargo_build
    ensure_debian_tool openssl openssl || fail "openssl is needed for a throwaway TLS certificate"
    # name, values file ("" = defaults), validator flags for the manifests, then for the secrets
    # (-in-secret: values the chart's Secret must hold; -nowhere: values it must ignore).
    local scenarios=(
        "defaults||-want=Secret -want-not=ServiceMonitor,PrometheusRule -expect=teleport.refresh_identity=true -expect=http.basic_auth.user=- -expect=metrics.listen_addr=0.0.0.0:9090 -expect=http.https_cert_file=/var/lib/teleport/plugins/jira/tls/tls.crt -expect=jira.api_token=$secrets_dir/api_token -expect=http.webhook_secret=-|"
        "go-chart|$chart/ci/go-chart-values.yaml|-want=Secret -want-not=ServiceMonitor,PrometheusRule -expect=teleport.identity=/var/lib/teleport/plugins/jira/teleport-identity/auth_id -expect=jira.issue_type=Bug -expect=jira.url=https://127.0.0.1:1/ -expect=http.public_addr=jira-plugin.example.com -expect=jira.api_token=$secrets_dir/api_token -expect=http.basic_auth.user=jira-hook -expect=http.basic_auth.password=- -expect=http.basic_auth.password_file=$secrets_dir/basic_auth_password -expect=log.severity=DEBUG -expect=log.format=-|-in-secret=jira.apiToken,http.basicAuth.password"
        "secured|$chart/ci/secured-values.yaml|-want=ServiceMonitor,PrometheusRule,Secret -expect=http.basic_auth.user=jira -expect=http.basic_auth.password=- -expect=http.basic_auth.password_file=$secrets_dir/basic_auth_password -expect=http.webhook_secret=$secrets_dir/webhook_secret -expect=jira.api_token=$secrets_dir/api_token -expect=jira.auth=bearer -expect=log.format=json -expect=reconcile.shutdown_grace_period=20s -expect=jira.statuses.approved=Granted -expect=metrics.listen_addr=0.0.0.0:9100|-in-secret=http.basicAuth.password,http.webhookSecret -nowhere=jira.apiToken"
        "existing|$chart/ci/existing-secrets-values.yaml|-want-not=Secret,ServiceMonitor,PrometheusRule -expect=jira.api_token=$secrets_dir/api_token -expect=http.webhook_secret=$secrets_dir/webhook_secret -expect=http.basic_auth.user=jira -expect=http.basic_auth.password=- -expect=http.basic_auth.password_file=$secrets_dir/basic_auth_password|-nowhere=jira.apiToken,http.webhookSecret,http.basicAuth.password"
        "plain|$chart/ci/plain-values.yaml|-want=Secret -want-not=ServiceMonitor,PrometheusRule -expect=http.https_cert_file=- -expect=http.basic_auth=- -expect=metrics=- -expect=jira.issue_type=- -expect=teleport.identity=/var/lib/teleport/plugins/jira/teleport-identity/auth_id -expect=http.webhook_secret=$secrets_dir/webhook_secret|-in-secret=jira.apiToken,http.webhookSecret -nowhere=http.basicAuth.password"
    )
    local tested=" " file
    for scenario in "${scenarios[@]}"; do tested+="$(cut -d'|' -f2 <<<"$scenario") "; done
    # A values file added to ci/ is tested, or the check says it is not.
    for file in "$chart"/ci/*-values.yaml; do
        [[ $tested == *" $file "* ]] || fail "$file is not among the scenarios of deploy/check.sh"
    done
    local scenario name values flags secret_flags
    for scenario in "${scenarios[@]}"; do
        IFS='|' read -r name values flags secret_flags <<<"$scenario"
        local dir="$work/$name" values_args=()
        mkdir -p "$dir"
        [[ -n $values ]] && values_args=(-f "$values")
        echo "-- $name${values:+ ($values)}"
        "$helm" lint --strict "$chart" "${values_args[@]}" >"$dir/lint.txt" ||
            { cat "$dir/lint.txt"; fail "$name: helm lint"; }
        grep -E '^1 chart\(s\) linted, 0 chart\(s\) failed' "$dir/lint.txt" | sed 's/^/    lint: /'
        "$helm" template r "$chart" --namespace plugins "${values_args[@]}" >"$dir/rendered.yaml"
        render_notes "${values_args[@]}"
        # First: a leaked secret is the worst finding, and it is reported as such.
        check_secrets "$name" "$dir/rendered.yaml" "$work/notes.yaml" "$secret_flags" ${values:+"$values"}
        # shellcheck disable=SC2086 # flags are words by design
        "$validator" manifests -config-out "$dir/config.toml" -args-out "$dir/args.txt" -rules "$rules" $flags "$dir/rendered.yaml" |
            sed 's/^/    /'
        echo "    NOTES.txt renders ($(wc -l <"$work/notes.txt") lines)"
        if [[ $name == defaults ]]; then
            # Nothing is set: the plugin rightly refuses the config (no Jira URL).
            echo "    (no config check: the default values leave the required keys empty)"
        else
            check_config "$name" "$dir/config.toml" "$dir/args.txt"
        fi
    done
    if "$helm" template r "$chart" --set tbot.enabled=true >/dev/null 2>"$work/tbot.txt" ||
        ! grep -q 'tbot.enabled: this chart does not deploy tbot' "$work/tbot.txt"; then
        fail "tbot.enabled (the Go chart's bundled tbot) is not refused with an explanation"
    fi
    echo "-- tbot.enabled: refused with an explanation"
    if "$helm" template r "$chart" --set http.publicAddress=jira:hunter2-pw@jira-plugin.example.com >/dev/null 2>"$work/userinfo.txt" ||
        ! grep -q 'http.publicAddress: credentials' "$work/userinfo.txt" || grep -q hunter2-pw "$work/userinfo.txt"; then
        fail "http.publicAddress with user:password@ (a password in the ConfigMap) is not refused, or the refusal repeats it"
    fi
    echo "-- http.publicAddress with credentials: refused, without repeating them"
    self_test_validator "$work/defaults/rendered.yaml"
    self_test_rules "$work/secured/rendered.yaml"
    self_test_secrets
}

# The secrets check must catch a leak: copies of the chart that write a secret of the values
# into the ConfigMap, a pod annotation (base64) or an environment variable are each rejected,
# and the one line about it names the value and the object.
self_test_secrets() {
    local values="$chart/ci/secured-values.yaml" count=0
    leak_case() {
        local template=$1 mutation=$2 key=$3 object=$4 copy="$work/leak-chart"
        rm -rf "$copy" && cp -R "$chart" "$copy"
        sed "$mutation" "$chart/$template" >"$copy/$template"
        cmp -s "$chart/$template" "$copy/$template" && fail "secrets self-test: '$mutation' changed nothing in $template"
        "$helm" template r "$copy" --namespace plugins -f "$values" >"$work/leaked.yaml"
        if "$validator" secrets -values "$chart/values.yaml" -values "$values" -keys "$secret_keys" \
            "$work/leaked.yaml" >/dev/null 2>"$work/leaked.txt"; then
            fail "secrets self-test: $key written into $object was not caught"
        fi
        grep -q "secret $key (.*) appears outside a Secret: in $object\$" "$work/leaked.txt" ||
            { cat "$work/leaked.txt"; fail "secrets self-test: the leak of $key is not reported as one in $object"; }
        count=$((count + 1))
    }
    # shellcheck disable=SC2016 # template text, not shell
    leak_case templates/configmap.yaml \
        's/^\( *\)password_file = .*/\1password = {{ include "teleport-jira.toml" .Values.http.basicAuth.password }}/' \
        http.basicAuth.password "ConfigMap jira-plugin"
    # shellcheck disable=SC2016
    leak_case templates/deployment.yaml \
        's/^\( *\)checksum\/config: .*/&\n\1example.com\/hook: {{ .Values.http.webhookSecret | b64enc }}/' \
        http.webhookSecret "Deployment jira-plugin"
    # shellcheck disable=SC2016
    leak_case templates/deployment.yaml \
        's/^\( *\)- name: TELEPORT_PLUGIN_FAIL_FAST/\1- name: JIRA_TOKEN\n\1  value: {{ .Values.jira.apiToken | quote }}\n&/' \
        jira.apiToken "Deployment jira-plugin"
    echo "-- secrets self-test: $count leaks (ConfigMap, annotation, env), each caught"
}

# The PrometheusRule must carry deploy/monitoring's rules unchanged: a rule changed in the
# rendering (as a stale copy in the chart's files/ would be) is rejected.
self_test_rules() {
    local rendered=$1
    sed '0,/severity: critical/s//severity: page/' "$rendered" >"$work/mutated.yaml"
    cmp -s "$rendered" "$work/mutated.yaml" && fail "rules self-test: the rendering has no critical alert"
    if "$validator" manifests -rules "$rules" "$work/mutated.yaml" >/dev/null 2>&1; then
        fail "rules self-test: a PrometheusRule that differs from $rules was not rejected"
    fi
    echo "-- rules self-test: a PrometheusRule differing from $rules is rejected"
}

# The validator must reject manifests that are wrong: a few mutations of the default rendering.
self_test_validator() {
    local rendered=$1 mutation count=0
    local mutations=(
        's/^\(  *\)readOnly: true/\1readOnly: true\n\1readOnIy: true/'
        's/port: metrics/port: metricz/'
        's/targetPort: webhook/targetPort: hook/'
        's/key: "jiraApiToken"/key: "token"/'
        's/path: api_token/path: token/'
        's/containerPort: 9090/containerPort: 9091/'
        's/defaultMode: 0600/defaultMode: "0600"/'
        's|mountPath: /var/lib/teleport/plugins/jira/tls|mountPath: /var/lib/teleport/plugins/jira/certs|'
        's/^\(  *\)- --config/\1- --conf/'
        's/^\(  *app.kubernetes.io\/instance:\) r$/\1 "r!"/'
        's/value: "true"/value: "false"/'
        's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/'
        's/path: \/readyz/path: readyz/'
    )
    for mutation in "${mutations[@]}"; do
        sed "$mutation" "$rendered" >"$work/mutated.yaml"
        cmp -s "$rendered" "$work/mutated.yaml" && fail "validator self-test: '$mutation' changed nothing"
        if "$validator" manifests "$work/mutated.yaml" >/dev/null 2>&1; then
            fail "validator self-test: '$mutation' was not rejected"
        fi
        count=$((count + 1))
    done
    echo "-- validator self-test: $count broken renderings, each rejected"
}

cargo_build() {
    if [[ -z ${plugin:-} ]]; then
        $cargo build --locked -p teleport-jira --quiet
        plugin="$root/target/debug/teleport-jira"
    fi
}

# ensure_debian_tool COMMAND PACKAGE: on CI, installs a missing command from Debian's packages;
# elsewhere only says whether it is there.
ensure_debian_tool() {
    command -v "$1" >/dev/null && return 0
    if [[ ${CI:-} == true ]]; then
        echo "$1 is missing; installing Debian's $2 package (CI only)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
        command -v "$1" >/dev/null && return 0
    fi
    return 1
}

# verify_unit UNIT BINARY: systemd-analyze checks that the ExecStart binary exists, so the unit
# is verified as a copy that points at BINARY (the staged one); nothing else differs.
verify_unit() {
    local unit=$1 binary=$2 installed_bin=$3
    local copy="$work/verify/teleport-jira.service"
    mkdir -p "$(dirname "$copy")"
    sed "s|^ExecStart=$installed_bin |ExecStart=$binary |" "$unit" >"$copy"
    grep -q "^ExecStart=$binary start" "$copy" || fail "systemd: ExecStart is not $installed_bin start ..."
    # verify exits 0 on an unknown key or an unparsable value ("ignoring"): any output fails.
    local findings
    findings=$(systemd-analyze verify "$copy" 2>&1) || findings+=" (exit status $?)"
    [[ -z $findings ]] || fail "systemd-analyze verify: $findings"
    echo "    systemd-analyze verify: no findings"
    local version
    version=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
    if ((${version:-0} < 250)); then
        echo "    systemd $version has no offline security review (250 and later): skipped"
        return 0
    fi
    systemd-analyze security --offline=yes --threshold="$max_exposure" "$copy" >"$work/verify/security.txt" 2>&1 ||
        { cat "$work/verify/security.txt"; fail "systemd-analyze security: exposure above $((max_exposure / 10)).$((max_exposure % 10))"; }
    echo "    systemd-analyze security --offline: $(grep -E 'Overall exposure level' "$work/verify/security.txt" | sed 's/.*: //')"
}

check_install() {
    step "install: make install into a scratch DESTDIR, then the systemd unit"
    local dest="$work/destdir" bindir=/usr/local/bin
    rm -rf "$dest"
    # The debug build: what is checked is the install step, not the optimiser.
    make --no-print-directory install DESTDIR="$dest" INSTALL_PROFILE=dev >"$work/install.txt" 2>&1 ||
        { cat "$work/install.txt"; fail "make install failed"; }
    grep -E '^(installed|kept) ' "$work/install.txt" | sed 's/^/    /'
    local binary="$dest$bindir/teleport-jira" unit="$dest/etc/systemd/system/teleport-jira.service"
    local config="$dest/etc/teleport-jira.toml" sysusers="$dest/etc/sysusers.d/teleport-jira.conf"
    [[ -x $binary ]] || fail "install: no executable $binary"
    "$binary" version | grep -q '^teleport-jira v' || fail "install: the installed binary does not run"
    [[ -f $unit && -f $sysusers && -f $config ]] || fail "install: a file is missing"
    grep -q "^ExecStart=$bindir/teleport-jira start --config /etc/teleport-jira.toml$" "$unit" ||
        fail "install: the unit's ExecStart is not $bindir/teleport-jira"
    [[ $(stat -c %a "$config") == 600 ]] || fail "install: the config's mode is $(stat -c %a "$config"), not 600"
    cmp -s "$config" <("$binary" configure) || fail "install: the config is not the example config"
    echo "# kept" >>"$config"
    make --no-print-directory install DESTDIR="$dest" INSTALL_PROFILE=dev >"$work/install.txt" 2>&1 ||
        { cat "$work/install.txt"; fail "make install failed the second time"; }
    tail -n1 "$config" | grep -qx '# kept' || fail "install: a second install replaced the existing config"
    echo "    files in place; a second install kept the existing config"
    if ensure_debian_tool systemd-analyze systemd; then
        verify_unit "$unit" "$binary" "$bindir/teleport-jira"
    else
        echo "    systemd-analyze is not installed here: the unit was not verified"
    fi
}

check_versions() {
    step "versions"
    local workspace rust chart_version
    workspace=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
    rust=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
    chart_version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$chart/Chart.yaml")
    [[ $chart_version == "$workspace" ]] || fail "Chart.yaml appVersion $chart_version is not the workspace version $workspace"
    grep -q "^ARG RUST_VERSION=$rust$" deploy/container/Containerfile ||
        fail "deploy/container/Containerfile does not build with the workspace's rust-version $rust"
    # The Containerfile copies the workspace's members by their top directory.
    local member top members
    members=$(sed -n 's/^members = \[\(.*\)\]/\1/p' Cargo.toml | tr -d '",')
    [[ -n $members ]] || fail "cannot read the workspace members from Cargo.toml (one line expected)"
    for member in $members; do
        top=${member%%/*}
        grep -Eq "^COPY $top \./$top\$" deploy/container/Containerfile ||
            fail "deploy/container/Containerfile does not copy the workspace member $member"
    done
    echo "    chart appVersion $chart_version, Containerfile Rust $rust and members: as in Cargo.toml"
}

started=$SECONDS
mkdir -p "$work"
case ${1:-all} in
    tools) install_tools ;;
    all)
        step "tools"
        install_tools
        check_chart
        check_install
        check_versions
        echo
        echo "deploy-check: all passed in $((SECONDS - started))s"
        ;;
    *) fail "unknown step ${1}; use tools or nothing" ;;
esac
