#!/usr/bin/env bash
# Installs a built teleport-jira binary, its systemd unit, the account the unit runs as and,
# when there is none yet, an example config. `make install` builds the binary and runs this.
#
#   deploy/install.sh BINARY
#
# Settings (environment), with the defaults `make install` passes:
#   DESTDIR            staging root; empty installs into the running system
#   BINDIR             /usr/local/bin
#   SYSTEMD_UNIT_DIR   /etc/systemd/system
#   SYSUSERS_DIR       /etc/sysusers.d
# The config is /etc/teleport-jira.toml, the path the unit and the plugin use by default.
set -euo pipefail

binary=${1:?usage: deploy/install.sh BINARY}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
destdir=${DESTDIR:-}
bindir=${BINDIR:-/usr/local/bin}
unitdir=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
sysusersdir=${SYSUSERS_DIR:-/etc/sysusers.d}
config=/etc/teleport-jira.toml
service_user=teleport-jira

for dir in "$bindir" "$unitdir" "$sysusersdir"; do
    case $dir in
        /*) ;;
        *) echo "install: $dir is not an absolute path" >&2; exit 1 ;;
    esac
done
if [[ ! -x $binary ]]; then
    echo "install: $binary is not an executable; build it first (make install does)" >&2
    exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

install -d -m 0755 "$destdir$bindir" "$destdir$unitdir" "$destdir$sysusersdir"
install -m 0755 "$binary" "$destdir$bindir/teleport-jira"
echo "installed $destdir$bindir/teleport-jira"

sed "s|@BINDIR@|$bindir|g" "$here/systemd/teleport-jira.service" >"$scratch/teleport-jira.service"
if grep -q '@[A-Z_]*@' "$scratch/teleport-jira.service"; then
    echo "install: the unit still has a placeholder" >&2
    exit 1
fi
install -m 0644 "$scratch/teleport-jira.service" "$destdir$unitdir/teleport-jira.service"
echo "installed $destdir$unitdir/teleport-jira.service"

install -m 0644 "$here/systemd/teleport-jira.sysusers" "$destdir$sysusersdir/teleport-jira.conf"
echo "installed $destdir$sysusersdir/teleport-jira.conf"

# On the running system, create the account now rather than at the next boot.
if [[ -z $destdir && $(id -u) -eq 0 ]] && command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$sysusersdir/teleport-jira.conf"
fi

created_config=false
if [[ -e $destdir$config ]]; then
    echo "kept the existing $destdir$config"
else
    install -d -m 0755 "$destdir$(dirname "$config")"
    (umask 077 && "$binary" configure >"$scratch/config.toml")
    install -m 0600 "$scratch/config.toml" "$destdir$config"
    created_config=true
    echo "installed an example config as $destdir$config (mode 600); edit it before starting"
fi

if [[ -z $destdir && $(id -u) -eq 0 ]]; then
    if $created_config && id "$service_user" >/dev/null 2>&1; then
        chown "$service_user:$service_user" "$config"
    fi
    if [[ -d /run/systemd/system ]]; then
        systemctl daemon-reload
    fi
    cat <<EOF

Next:
  edit $config (it must stay readable by the $service_user account only), then
  $bindir/teleport-jira check -c $config
  systemctl enable --now teleport-jira
EOF
fi
