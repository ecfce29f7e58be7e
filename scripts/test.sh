#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: set-up (idempotent, cached), then pytest.
# Unit tests always run. Integration tests start one real network per ledger engine for the session:
# the embedded engine everywhere, and Fabric too wherever a release is configured (see scripts/setup.sh);
# the summary line "ledger engines: ..." counts the tests run on each. SWARMFUSE_REQUIRE_FABRIC=1 makes a
# missing Fabric a failure. No test collected is a failure.
# Usage: scripts/test.sh [pytest args...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh || { echo "[test] set-up failed" >&2; exit 1; }

fabric_status=$(sed -n 's/^status=//p' .swarmfuse-fabric 2>/dev/null)
if [[ $fabric_status != ready && ${SWARMFUSE_REQUIRE_FABRIC:-0} == 1 ]]; then
  echo "[test] SWARMFUSE_REQUIRE_FABRIC=1 and Fabric is not available" >&2
  exit 1
fi

.venv/bin/python -m pytest "$@"
rc=$?
if [[ $rc == 5 ]]; then
  echo "[test] error: pytest collected no tests" >&2
  exit 1
fi
if [[ $fabric_status != ready ]]; then
  printf '\033[1m[test] integration tests ran on the embedded engine only: no Fabric release on this machine (%s)\033[0m\n' \
    "$(sed -n 's/^reason=//p' .swarmfuse-fabric)" >&2
fi
exit $rc
