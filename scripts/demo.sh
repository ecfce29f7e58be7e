#!/usr/bin/env bash
# Demo of the ledger layer (interim, until the site agents land): a 3-org network on the default engine
# (Fabric when a release is configured, the embedded engine otherwise), a task channel "demo" with the
# swarmfuse chaincode, one Sample:Put through DC1's gateway and Sample:Get on every org's peer.
# Usage: scripts/demo.sh [--keep] [--home DIR] [--port-base N] [--engine auto|embedded|fabric]
#   --keep        leave the network running at the end (stop it with: swarmfuse network down --home DIR)
#   --home DIR    network home (default: a fresh temporary folder, deleted at the end unless --keep)
#   --port-base N first port of the network's range (default 27000)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[demo] error:\033[0m %s\n' "$*" >&2; exit 1; }

keep=0 home="" port_base=27000 engine=auto
while (($#)); do
  case $1 in
    --keep) keep=1 ;;
    --home) home=${2:?--home needs a folder}; shift ;;
    --port-base) port_base=${2:?--port-base needs a number}; shift ;;
    --engine) engine=${2:?--engine needs auto, embedded or fabric}; shift ;;
    *) die "unknown argument: $1 (usage: scripts/demo.sh [--keep] [--home DIR] [--port-base N] [--engine E])" ;;
  esac
  shift
done
bash scripts/setup.sh
sf() { .venv/bin/swarmfuse "$@" --home "$home"; }
purge=0
[[ -z $home ]] && { home=$(mktemp -d "${TMPDIR:-/tmp}/swarmfuse-demo.XXXXXX")/home; purge=1; }

cleanup() {
  if ((keep)); then
    say "network left running under $home (stop it: .venv/bin/swarmfuse network down --home $home)"
  elif [[ -f $home/state.json ]]; then
    if ((purge)); then sf network down --purge || true; else sf network down || true; fi
  fi
  if ((purge && !keep)); then rmdir "$(dirname "$home")" 2>/dev/null || true; fi
}
trap cleanup EXIT

say "starting 3 DC orgs under $home (engine: $engine)"
sf network up --orgs 3 --port-base "$port_base" --engine "$engine"
used=$(.venv/bin/python -c 'import sys, json; print(json.load(open(sys.argv[1]))["engine"])' "$home/state.json")
say "the network runs on the $used engine"
say "creating task channel 'demo' for DC1, DC2, DC3 and deploying the chaincode"
sf task create demo --orgs DC1,DC2,DC3
value="fused at $(date -u +%H:%M:%S)"
say "Sample:Put greeting=\"$value\" as DC1 (endorsed by a majority of DC1..DC3)"
sf task invoke demo Sample:Put greeting "$value" --org DC1
for org in DC1 DC2 DC3; do
  got=$(sf task query demo Sample:Get greeting --org "$org")
  printf '  %-4s peer reads greeting = %s\n' "$org" "$got"
  [[ $got == "$value" ]] || die "$org read '$got', expected '$value'"
done
say "every org of the task reads the value back (engine: $used)"
