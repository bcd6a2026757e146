#!/bin/sh
# Install the system packages the tests use (tests/system-packages.txt), on Debian or Ubuntu.
# As root: apt-get installs the missing ones. Otherwise: names them and goes on (exit 0); the tests
# that need one then skip, naming its package.
set -eu
list="$(dirname "$0")/../tests/system-packages.txt"
missing=""
while read -r program package _; do
    case "$program" in ''|'#'*) continue ;; esac
    if [ "${program#/}" != "$program" ]; then
        [ -e "$program" ] && continue
    else
        command -v "$program" >/dev/null 2>&1 && continue
    fi
    case " $missing " in *" $package "*) ;; *) missing="$missing $package" ;; esac
done < "$list"
# Debian and Ubuntu ship venv and ensurepip apart from python3
python3 -c "import ensurepip, venv" 2>/dev/null || missing="$missing python3-venv"
if [ -z "$missing" ]; then
    echo "system packages: all present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages missing:$missing"
    echo "  install them as root (apt-get install$missing); until then the tests that need them skip, naming the package"
    exit 0
fi
echo "+ apt-get install$missing"
apt-get update -qq
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
