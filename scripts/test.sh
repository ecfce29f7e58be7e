#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: set-up (idempotent, cached), the linter (ruff), then pytest.
# Unit tests always run. Integration tests start one real network per ledger engine for the session:
# the embedded engine everywhere, and Fabric too wherever a release is configured (see scripts/setup.sh);
# the summary line "ledger engines: ..." counts the tests run on each. SWARMFUSE_REQUIRE_FABRIC=1 makes a
# missing Fabric a failure. No test collected is a failure.
# The site store's tests run on SQLite and on PostgreSQL: this script installs the Debian packages the tests
# need (scripts/test_deps.sh: postgresql, chromium, chromium-driver), starts a throwaway PostgreSQL server
# for the session (a new cluster in a temp dir, on 127.0.0.1 only, password auth, one database) and hands
# it to the tests as SWARMFUSE_TEST_POSTGRES_URL; it stops the server and deletes the dir when it exits, also
# after a failure or an interruption (and a watchdog does so if this script is killed outright). The
# summary line "site store: ..." counts the tests passed on each database. A server that cannot start is a
# failure; on a developer's machine SWARMFUSE_TEST_POSTGRES=0 runs without it (and says so at the end).
# The multi-host test (marker multihost: the roles in network namespaces on a bridge) runs with the rest; it needs
# root and iproute2 (scripts/test_deps.sh installs it) and fails without them; SWARMFUSE_TEST_MULTIHOST=0 skips it
# on a developer's machine (and says so at the end).
# Usage: scripts/test.sh [pytest args...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bold() { printf '\033[1m[test] %s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31m[test] error: %s\033[0m\n' "$*" >&2; exit 1; }

bash scripts/setup.sh || die "set-up failed"
bash scripts/test_deps.sh || die "the Debian packages the tests need are not installed"

# The linter first: a finding fails the run before any test starts (pyproject.toml pins ruff and its rules).
bold "lint: ruff check"
.venv/bin/ruff check --quiet . || die "ruff found problems (above); run .venv/bin/ruff check --fix . for the fixable ones"

fabric_status=$(sed -n 's/^status=//p' .swarmfuse-fabric 2>/dev/null)
if [[ $fabric_status != ready && ${SWARMFUSE_REQUIRE_FABRIC:-0} == 1 ]]; then
  die "SWARMFUSE_REQUIRE_FABRIC=1 and Fabric is not available"
fi

# ---------------------------------------------------------------- PostgreSQL for the store tests
pg_dir=""        # the cluster's temp dir (data/, the unix socket, server.log); empty when none
pg_bin=""        # /usr/lib/postgresql/<newest>/bin
pg_as=()         # runs a PostgreSQL program as a user it accepts (the `postgres` user when we are root)
pg_watchdog=""

stop_postgres() {
  [[ -n $pg_dir ]] || return 0
  if [[ -f $pg_dir/data/postmaster.pid ]]; then
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1 \
      || kill -9 "$(head -n1 "$pg_dir/data/postmaster.pid")" 2>/dev/null
  fi
  [[ -z $pg_watchdog ]] || kill "$pg_watchdog" 2>/dev/null
  rm -rf "$pg_dir"
  pg_dir=""
}

# start_postgres: a new cluster, a role and a database; sets pg_url and pg_version (pg_error on failure).
start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [[ ! -x $pg_bin/initdb || ! -x $pg_bin/pg_ctl || ! -x $pg_bin/psql ]]; then
    pg_error="no PostgreSQL server under /usr/lib/postgresql/<version>/bin (Debian package postgresql)"
    return 1
  fi
  pg_version=$("$pg_bin/postgres" --version | awk '{print $3}')
  pg_dir=$(mktemp -d /tmp/swarmfuse-test-pg.XXXXXX)
  if (( EUID == 0 )); then  # PostgreSQL refuses to run as root
    id -u postgres >/dev/null 2>&1 || { pg_error="no 'postgres' user to run the server as"; return 1; }
    pg_as=(runuser -u postgres --)
    chown postgres: "$pg_dir"
  fi
  # A watchdog outside this script's process group: if this script dies without its EXIT trap (SIGKILL),
  # it stops the server (which pg_ctl detaches from us) and deletes the dir.
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done
                  [[ -f $3/data/postmaster.pid ]] && "${@:4}" "$2" -D "$3/data" -m immediate -w -t 20 stop
                  rm -rf "$3"' watchdog $$ "$pg_bin/pg_ctl" "$pg_dir" "${pg_as[@]}" </dev/null >/dev/null 2>&1 &
  pg_watchdog=$!
  local admin_password password port attempt
  admin_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  (umask 077; echo "$admin_password" > "$pg_dir/pwfile")
  (( EUID != 0 )) || chown postgres: "$pg_dir/pwfile"
  # host (TCP) connections need a password; the unix socket, in the private temp dir, trusts its users
  if ! "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --pwfile="$pg_dir/pwfile" \
      --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --no-locale --no-sync >"$pg_dir/initdb.log" 2>&1; then
    pg_error="initdb failed: $(tail -n 3 "$pg_dir/initdb.log" | tr '\n' ' ')"
    return 1
  fi
  rm -f "$pg_dir/pwfile"
  # loopback only, its socket in the temp dir; durability is of no use to a throwaway cluster
  printf '%s\n' "listen_addresses = '127.0.0.1'" "unix_socket_directories = '$pg_dir'" "fsync = off" \
    "synchronous_commit = off" "full_page_writes = off" >> "$pg_dir/data/postgresql.conf"
  for attempt in 1 2 3; do  # a free port now; taken in the meantime: try another
    port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -o "-p $port" -w -t 30 start \
        >/dev/null 2>&1; then
      break
    fi
    if (( attempt == 3 )) || ! grep -q "could not bind" "$pg_dir/server.log"; then
      pg_error="the server did not start: $(tail -n 3 "$pg_dir/server.log" | tr '\n' ' ')"
      return 1
    fi
  done
  if ! "${pg_as[@]}" "$pg_bin/psql" -h "$pg_dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qX \
      -c "CREATE ROLE swarmfuse LOGIN PASSWORD '$password'" -c "CREATE DATABASE swarmfuse_test OWNER swarmfuse" \
      >"$pg_dir/psql.log" 2>&1; then
    pg_error="creating the test database failed: $(tr '\n' ' ' < "$pg_dir/psql.log")"
    return 1
  fi
  pg_url="postgresql+psycopg://swarmfuse:$password@127.0.0.1:$port/swarmfuse_test"
  pg_port=$port
}

trap stop_postgres EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ ${SWARMFUSE_TEST_MULTIHOST:-1} == 0 ]]; then
  bold "SWARMFUSE_TEST_MULTIHOST=0: the multi-host test (network namespaces) will NOT run"
elif (( EUID != 0 )) || ! command -v ip >/dev/null; then
  bold "the multi-host test needs root and iproute2 and will fail here (SWARMFUSE_TEST_MULTIHOST=0 skips it)"
fi

unset SWARMFUSE_TEST_POSTGRES_URL
if [[ ${SWARMFUSE_TEST_POSTGRES:-1} == 0 ]]; then
  pg_note="SWARMFUSE_TEST_POSTGRES=0: the site store's tests did NOT run on PostgreSQL (SQLite only)"
  bold "$pg_note"
else
  started=$(date +%s%N)
  pg_error=""
  start_postgres || die "cannot start PostgreSQL for the store tests: $pg_error
  (on a developer's machine without PostgreSQL, SWARMFUSE_TEST_POSTGRES=0 runs the tests on SQLite only)"
  export SWARMFUSE_TEST_POSTGRES_URL=$pg_url
  bold "PostgreSQL $pg_version for the store tests: a throwaway server on 127.0.0.1:$pg_port, up in $(( ($(date +%s%N) - started) / 1000000 )) ms"
fi

# The extractors the tests use, trained here once (cached): a new machine spends most of its first run on this,
# outside any test's time limit.
started=$(date +%s)
.venv/bin/swarmfuse fuse train || die "training the extractors failed"
bold "extractors ready in $(( $(date +%s) - started )) s (trained once per machine, then cached)"

.venv/bin/python -m pytest "$@"
rc=$?
if [[ $rc == 5 ]]; then
  echo "[test] error: pytest collected no tests" >&2
  exit 1
fi
if [[ $fabric_status != ready ]]; then
  bold "integration tests ran on the embedded engine only: no Fabric release on this machine ($(sed -n 's/^reason=//p' .swarmfuse-fabric))"
fi
if [[ ${SWARMFUSE_TEST_MULTIHOST:-1} == 0 ]]; then
  bold "SWARMFUSE_TEST_MULTIHOST=0: the multi-host test (network namespaces) did NOT run"
fi
if [[ -n ${pg_note:-} ]]; then
  bold "$pg_note"
else
  bold "databases of the site store's tests: SQLite and PostgreSQL $pg_version (the 'site store:' line above counts the passes on each)"
fi
exit $rc
