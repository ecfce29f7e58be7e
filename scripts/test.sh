#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: set-up (idempotent, cached), then pytest.
# Unit tests always run. Integration tests start one real Fabric network for the session; when
# this machine has no Fabric (see scripts/setup.sh) they are reported as NOT RUN with the reason,
# or fail when SWARMFUSE_REQUIRE_FABRIC=1. No test collected is a failure.
# Usage: scripts/test.sh [pytest args...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh || { echo "[test] set-up failed" >&2; exit 1; }

fabric_status=$(sed -n 's/^status=//p' .swarmfuse-fabric 2>/dev/null)
if [[ $fabric_status != ready ]]; then
  [[ ${SWARMFUSE_REQUIRE_FABRIC:-0} == 1 ]] && { echo "[test] SWARMFUSE_REQUIRE_FABRIC=1 and Fabric is not available" >&2; exit 1; }
fi

.venv/bin/python -m pytest "$@"
rc=$?
if [[ $rc == 5 ]]; then
  echo "[test] error: pytest collected no tests" >&2
  exit 1
fi
if [[ $fabric_status != ready ]]; then
  printf '\033[1;31m[test] INTEGRATION TESTS NOT RUN: no Fabric on this machine (%s)\033[0m\n' \
    "$(sed -n 's/^reason=//p' .swarmfuse-fabric)" >&2
fi
exit $rc
