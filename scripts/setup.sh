#!/usr/bin/env bash
# One-time, idempotent set-up of a machine for swarmfuse; called by scripts/demo.sh and scripts/test.sh.
#  1. .venv with swarmfuse installed (editable) and its ML and test extras; skipped when the
#     dependency files have not changed since the last run.
#  2. Fabric's binaries and default configs in a cache keyed by the pinned commit:
#     $SWARMFUSE_CACHE/fabric/<commit>/{bin,config} (default cache: ~/.cache/swarmfuse), built with
#     `go install` from the Go module proxy, or taken from $SWARMFUSE_FABRIC_HOME when the operator
#     already has a Fabric release laid out as bin/ + config/.
#  3. The pinned data sets (emoji images and texts, 20 Newsgroups), fetched and verified by
#     scripts/fetch_data.sh into the same cache.
# The Debian packages only the tests need (PostgreSQL, Chromium) are not installed here but by
# scripts/test_deps.sh, which scripts/test.sh runs after this: the demo needs none of them.
# Exit status: 0 when the Python environment is ready. A missing Fabric is reported and recorded in
# .swarmfuse-fabric (read by the tests), not turned into a failure: networks then run on the embedded
# engine, and the integration tests run on it alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- Python environment
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 is needed ($python is $("$python" --version 2>&1))"
stamp=.venv/.swarmfuse-deps
want=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  log "Python environment up to date (.venv)"
else
  [[ -x .venv/bin/python ]] || { log "creating .venv"; "$python" -m venv .venv; }
  log "installing swarmfuse with its ML and test extras into .venv (first run downloads PyTorch, a few GB)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[ml,dev]"
  echo "$want" > "$stamp"
fi

# ---------------------------------------------------------------- Fabric binaries
# shellcheck source=../network/fabric.env
source network/fabric.env
cache=${SWARMFUSE_CACHE:-$HOME/.cache/swarmfuse}
dest=$cache/fabric/$FABRIC_COMMIT
have_all() { local c; for c in $FABRIC_COMMANDS; do [[ -x $1/bin/$c ]] || return 1; done; [[ -f $1/config/core.yaml && -f $1/config/orderer.yaml ]]; }
record() { printf '%s\n' "$@" > .swarmfuse-fabric; }

if [[ -n ${SWARMFUSE_FABRIC_HOME:-} ]]; then
  have_all "$SWARMFUSE_FABRIC_HOME" || die "SWARMFUSE_FABRIC_HOME=$SWARMFUSE_FABRIC_HOME must hold bin/{${FABRIC_COMMANDS// /,}} and config/{core,orderer}.yaml"
  log "using the Fabric release at $SWARMFUSE_FABRIC_HOME ($("$SWARMFUSE_FABRIC_HOME/bin/peer" version 2>/dev/null | awk '/Version:/{print $2; exit}'))"
  record "status=ready" "home=$SWARMFUSE_FABRIC_HOME"
elif have_all "$dest"; then
  log "Fabric $FABRIC_VERSION binaries cached at $dest"
  record "status=ready" "home=$dest"
else
  command -v go >/dev/null || die "Go is needed to build Fabric (or set SWARMFUSE_FABRIC_HOME to a Fabric release)"
  log "building Fabric $FABRIC_VERSION ($FABRIC_COMMIT) with go install; the first build takes minutes"
  tmp=$(mktemp -d "$cache/fabric/.build.XXXXXX" 2>/dev/null || { mkdir -p "$cache/fabric"; mktemp -d "$cache/fabric/.build.XXXXXX"; })
  trap 'rm -rf "$tmp"' EXIT
  pkgs=(); for c in $FABRIC_COMMANDS; do pkgs+=("$FABRIC_MODULE/cmd/$c@$FABRIC_COMMIT"); done
  start=$(date +%s)
  if (cd "$tmp" && GOBIN=$tmp/bin GOFLAGS=-modcacherw go install "${pkgs[@]}") >"$tmp/go.log" 2>&1; then
    modver=$(cd "$tmp" && go list -m -f '{{.Dir}}' "$FABRIC_MODULE@$FABRIC_COMMIT")
    cp -r "$modver/sampleconfig" "$tmp/config" && chmod -R u+w "$tmp/config"
    rm -f "$tmp/go.log"; rm -rf "$dest"; mkdir -p "$(dirname "$dest")"; mv "$tmp" "$dest"; trap - EXIT
    log "Fabric built in $(( $(date +%s) - start )) s and cached at $dest"
    record "status=ready" "home=$dest"
  else
    reason=$(grep -m1 -E 'go: |error' "$tmp/go.log" || tail -n1 "$tmp/go.log")
    reason=$(sed -E 's#reading https?://[^ ]+ ##' <<<"$reason")  # the go tool's message, without the URL
    printf '\033[1;33m%s\033[0m\n' \
      "Fabric $FABRIC_VERSION is not available on this machine; networks run on the embedded engine." \
      "  go install $FABRIC_MODULE/cmd/...@$FABRIC_COMMIT failed: $reason" \
      "  For Fabric, set SWARMFUSE_FABRIC_HOME to a Fabric $FABRIC_VERSION release (bin/ + config/) and run again." >&2
    record "status=missing" "reason=$reason"
  fi
fi

# ---------------------------------------------------------------- data
log "data sets (pinned, verified)"
bash scripts/fetch_data.sh >/dev/null || die "fetching the data sets failed (run scripts/fetch_data.sh to see why)"
