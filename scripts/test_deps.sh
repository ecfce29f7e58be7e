#!/usr/bin/env bash
# The Debian packages only the tests need (the demo needs none of them; scripts/setup.sh stays lean),
# installed when missing; called by scripts/test.sh after scripts/setup.sh:
#   postgresql                 the server scripts/test.sh starts (a throwaway cluster on loopback) for the
#                              site store's tests on PostgreSQL
#   chromium, chromium-driver  the auditor web page's browser test (Selenium drives Debian's browser)
#   iproute2                   the multi-host test (tests/network/test_multihost.py): `ip netns`, veth pairs, a bridge
# Idempotent: installed packages are checked with dpkg in well under a second. When some are missing: one
# `apt-get update`, then `apt-get install`, as root or through sudo without a password; otherwise it names
# the packages to install and fails. The postgresql package creates and starts no cluster of its own here.
set -euo pipefail
log() { printf '\033[1m[test-deps]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[test-deps] error:\033[0m %s\n' "$*" >&2; exit 1; }

server_packages=(postgresql)
browser_packages=(chromium chromium-driver)
network_packages=(iproute2)
installed() { [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]; }
missing_of() { local p; for p in "$@"; do installed "$p" || printf '%s\n' "$p"; done; }

mapfile -t missing_server < <(missing_of "${server_packages[@]}")
mapfile -t missing_browser < <(missing_of "${browser_packages[@]}")
mapfile -t missing_network < <(missing_of "${network_packages[@]}")
missing=("${missing_server[@]}" "${missing_browser[@]}" "${missing_network[@]}")
if (( ${#missing[@]} == 0 )); then
  log "Debian packages for the tests installed (${server_packages[*]} ${browser_packages[*]} ${network_packages[*]})"
  exit 0
fi

command -v apt-get >/dev/null || die "the tests need the Debian packages ${missing[*]} and there is no apt-get here: install them by hand"
sudo=()
if (( EUID != 0 )); then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    die "the tests need the Debian packages ${missing[*]}; as root run:  apt-get update && apt-get install ${missing[*]}"
  fi
fi

apt_log=$(mktemp)
dropin=/etc/postgresql-common/createcluster.d/00-swarmfuse-test-deps.conf
cleanup() { rm -f "$apt_log"; [[ ! -f $dropin ]] || "${sudo[@]}" rm -f "$dropin"; }
trap cleanup EXIT
apt() {  # apt-get, waiting up to 5 minutes for another apt/dpkg run to finish; its output shown on failure
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 "$@" >"$apt_log" 2>&1; then
    tail -n 25 "$apt_log" >&2
    die "apt-get $1 failed (its output above); the tests need the Debian packages ${missing[*]}: install them and run again"
  fi
}

start=$(date +%s)
log "installing the Debian packages the tests need: ${missing[*]} (apt-get update, then install)"
apt update
if (( ${#missing_server[@]} )); then
  # Debian's postgresql package would create and start a system cluster ("15/main" on port 5432); the tests
  # start their own, so tell postgresql-common not to (createcluster.conf reads createcluster.d/ for this).
  "${sudo[@]}" mkdir -p "$(dirname "$dropin")"
  echo "create_main_cluster = false" | "${sudo[@]}" tee "$dropin" >/dev/null
  apt install --no-install-recommends "${missing_server[@]}"
fi
if (( ${#missing_browser[@]} )); then
  apt install "${missing_browser[@]}"
fi
if (( ${#missing_network[@]} )); then
  apt install --no-install-recommends "${missing_network[@]}"
fi
for package in "${missing[@]}"; do
  installed "$package" || die "apt-get reported success but $package is not installed"
done
log "installed ${missing[*]} in $(( $(date +%s) - start )) s"
