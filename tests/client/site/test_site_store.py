"""Site store: migrations on open, the tables' helpers, the SQL checkpointer. Fast; no network.

Every database test runs on each database of the ``db_url`` fixture (tests/store_databases.py): SQLite
always; ``SWARMFUSE_TEST_POSTGRES_URL`` adds a PostgreSQL database (scripts/test.sh starts a throwaway server
and sets it). A non-SQLite database must be a throwaway one: each test starts by dropping every table in it.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from swarmfuse.client.gateway.checkpoint import Checkpointer, Position
from swarmfuse.client.site.store import (
    MIGRATIONS,
    Action,
    ActionStatus,
    ArtefactStatus,
    Base,
    Direction,
    Modality,
    SqlCheckpointer,
    Store,
    StoreError,
    alembic_config,
    head_revision,
    site_dir,
)
from swarmfuse.client.site.store.db import _enable_wal

TABLES = {"datasets", "events_checkpoint", "rounds", "artefacts", "actions"}
SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


# --- opening and migrations ---

def test_open_migrates_an_empty_database_to_head_and_reopening_keeps_the_data(db_url: str) -> None:
    with Store.open(db_url) as store:
        assert store.revision() == head_revision()
        assert TABLES <= set(inspect(store.engine).get_table_names())
        store.save_round("r1", state="open", leader="DC1")
    with Store.open(db_url) as again:
        assert again.revision() == head_revision()
        assert again.get_round("r1").leader == "DC1"


def test_models_match_the_migrations(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_then_open_migrates_again(db_url: str) -> None:
    with Store.open(db_url) as store, store.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    engine = create_engine(db_url)
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    with Store.open(db_url) as store:
        assert store.revision() == head_revision()


def test_a_database_from_a_newer_schema_is_refused(store: Store, db_url: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="newer swarmfuse"):
        Store.open(db_url)


def test_two_agents_opening_one_new_database_at_once_both_get_it_migrated(db_url: str) -> None:
    opened: list[str | None] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            with Store.open(db_url) as store:
                opened.append(store.revision())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and opened == [head_revision()] * 3


def test_an_unreachable_server_is_named_without_its_password() -> None:
    masked = r"postgresql\+psycopg://swarmfuse:\*\*\*@127\.0\.0\.1:1/x"
    with pytest.raises(StoreError, match=f"cannot open the store at {masked}") as raised:
        Store.open("postgresql+psycopg://swarmfuse:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(raised.value)


def test_a_bad_url_is_named() -> None:
    with pytest.raises(StoreError, match="nosuchdb"):
        Store.open("nosuchdb://x/y")


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    (tmp_path / "site.sqlite").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match=f"cannot open the store at sqlite:///{tmp_path}/site.sqlite"):
        Store.open(f"sqlite:///{tmp_path}/site.sqlite")


def test_for_site_uses_a_sqlite_file_under_the_home(tmp_path: Path) -> None:
    with Store.for_site(tmp_path, "DC2") as store:
        assert store.revision() == head_revision()
    assert (tmp_path / "sites" / "DC2" / "site.sqlite").is_file()
    assert site_dir(tmp_path, "DC2") == tmp_path / "sites" / "DC2"
    with pytest.raises(StoreError, match="not a valid org name"):
        site_dir(tmp_path, "../DC2")


def test_in_memory_sqlite_keeps_its_data_for_the_life_of_the_store() -> None:
    with Store.open("sqlite://") as store:
        store.save_round("r1", state="open")
        assert store.get_round("r1").state == "open"


def test_the_migrations_ship_in_the_wheel() -> None:
    # setup.py packages every folder with an __init__.py; revisions are modules of such a package.
    root = Path(__file__).resolve().parents[3]
    sys.path.insert(0, str(root))
    try:
        from setup import _packages  # the repository's own setup.py
        cwd = os.getcwd()
        os.chdir(root)
        try:
            packages = _packages()
        finally:
            os.chdir(cwd)
    finally:
        sys.path.remove(str(root))
    migrations = "swarmfuse.client.site.store.migrations"
    assert {migrations, f"{migrations}.versions"} <= set(packages)
    assert (MIGRATIONS / "env.py").is_file()
    assert min(p.name for p in (MIGRATIONS / "versions").glob("[0-9]*.py")) == "0001_initial.py"


# --- tables ---

def test_datasets_register_once_per_manifest_data_and_extractor(store: Store) -> None:
    args = {"modality": "text", "manifest_path": "texts.csv", "manifest_sha256": SHA_A, "fingerprint": SHA_B,
            "entity_count": 3, "feature_dim": 400, "extractor_sha256": SHA_C}
    first = store.add_dataset(**args)
    assert store.add_dataset(**args) == first
    labels = store.add_dataset(modality=Modality.LABEL, manifest_path="labels.csv", manifest_sha256=SHA_B,
                               fingerprint=SHA_C, entity_count=3)
    assert labels.feature_dim is None and labels.extractor_sha256 is None
    newer = store.add_dataset(**args | {"extractor_sha256": SHA_A})
    assert [d.id for d in store.datasets()] == [first.id, labels.id, newer.id]
    assert store.latest_dataset("text") == newer
    assert store.latest_dataset("image") is None
    with pytest.raises(ValueError):
        store.add_dataset(**args | {"modality": "audio"})


def test_rounds_update_only_the_given_fields(store: Store) -> None:
    with pytest.raises(StoreError, match="state is required"):
        store.save_round("r1", leader="DC1")
    store.save_round("r1", state="open", role="participant", leader="DC1")
    updated = store.save_round("r1", aligned_count=42, commitment=SHA_A)
    assert (updated.state, updated.role, updated.leader, updated.aligned_count) == ("open", "participant", "DC1", 42)
    store.save_round("r2", state="open")
    store.save_round("r1", state="fused")
    assert [r.round_id for r in store.rounds("open")] == ["r2"]
    assert {r.round_id for r in store.rounds()} == {"r1", "r2"}
    assert store.get_round("r3") is None


def test_artefacts_keep_every_attempt_and_their_checks(store: Store, tmp_path: Path) -> None:
    bad = store.add_artefact("r1", kind="features", direction="in", peer_org="DC2", sha256=SHA_A, size=10)
    assert bad.status is ArtefactStatus.PENDING
    rejected = store.set_artefact_status(bad.id, "rejected", reason="sha256 differs from the exchange record")
    assert rejected.reason.startswith("sha256 differs")
    good = store.add_artefact("r1", kind="features", direction=Direction.IN, peer_org="DC2", sha256=SHA_B, size=10)
    store.set_artefact_status(good.id, ArtefactStatus.VERIFIED, path=tmp_path / f"{SHA_B}.npy")
    store.add_artefact("r1", kind="labels", direction="out", peer_org="DC1", sha256=SHA_C, size=0)
    found = store.verified_artefact("r1", kind="features", direction="in", peer_org="DC2")
    assert found is not None and found.id == good.id and found.path == str(tmp_path / f"{SHA_B}.npy")
    assert store.verified_artefact("r1", kind="labels", direction="out", peer_org="DC1") is None
    assert [a.id for a in store.artefacts("r1", kind="features")] == [bad.id, good.id]
    assert [a.status for a in store.artefacts(direction="in")] == [ArtefactStatus.REJECTED, ArtefactStatus.VERIFIED]
    assert store.artefacts("r2") == []
    with pytest.raises(StoreError, match="negative"):
        store.add_artefact("r1", kind="features", direction="in", peer_org="DC2", sha256=SHA_A, size=-1)
    with pytest.raises(ValueError):
        store.set_artefact_status(good.id, "accepted")
    with pytest.raises(StoreError, match="no artefact with id 999"):
        store.set_artefact_status(999, "verified")


def test_actions_are_done_once(store: Store) -> None:
    assert not store.action_done("r1", "send:features")
    store.start_action("r1", "send:features")
    assert store.action("r1", "send:features").status is ActionStatus.STARTED
    assert not store.action_done("r1", "send:features")
    store.finish_action("r1", "send:features", detail="tx abc")
    assert store.action_done("r1", "send:features")
    again = store.start_action("r1", "send:features")  # a restarted agent cannot un-finish an action
    assert again.done and again.detail == "tx abc"
    store.finish_action("r1", "train", failed=True, detail="out of memory")
    assert store.start_action("r1", "train").status is ActionStatus.STARTED
    assert [a.action for a in store.actions("r1")] == ["send:features", "train"]
    with pytest.raises(IntegrityError), store.session() as session:  # the database enforces the uniqueness too
        session.add(Action(round_id="r1", action="train", status="done"))


def test_a_session_commits_several_writes_together_or_none(store: Store) -> None:
    checkpointer = SqlCheckpointer(store, "task1", "swarmfuse")
    with pytest.raises(RuntimeError), store.session() as session:
        store.finish_action("r1", "acknowledge", session=session)
        checkpointer.save(Position(7, "tx7"), session=session)
        raise RuntimeError("crash before commit")
    assert store.action("r1", "acknowledge") is None
    assert checkpointer.position == Position()
    with store.session() as session:
        store.finish_action("r1", "acknowledge", session=session)
        checkpointer.save(Position(7, "tx7"), session=session)
    assert store.action_done("r1", "acknowledge") and checkpointer.position == Position(7, "tx7")


def test_what_postgresql_refuses_is_refused_on_every_database(store: Store) -> None:
    store.save_round("r" * 64, state="open")
    with pytest.raises(StoreError, match="rounds.round_id holds at most 64 characters, got 65"):
        store.save_round("r" * 65, state="open")
    with pytest.raises(StoreError, match="actions.action holds at most 128"):
        store.finish_action("r1", "x" * 129)
    with pytest.raises(StoreError, match="rounds.leader holds at most 64"):  # on update too
        store.save_round("r" * 64, leader="D" * 65)
    with pytest.raises(StoreError, match="NUL"):
        store.finish_action("r1", "train", failed=True, detail="bad\x00byte")
    assert [r.round_id for r in store.rounds()] == ["r" * 64] and store.actions() == []


def test_timestamps_are_timezone_aware_utc(store: Store) -> None:
    before = dt.datetime.now(dt.UTC)
    record = store.save_round("r1", state="open")
    assert record.updated.tzinfo == dt.UTC and before - dt.timedelta(seconds=5) <= record.updated
    assert store.get_round("r1").updated == record.updated
    with pytest.raises(Exception, match="naive datetime"), store.session() as session:
        session.add(Action(round_id="r1", action="x", status="done", created=dt.datetime.now()))


def test_a_second_writer_waits_instead_of_failing(store: Store, db_url: str) -> None:
    with Store.open(db_url) as other:
        entered, release = threading.Event(), threading.Event()

        def hold() -> None:
            with store.session() as session:
                store.finish_action("r1", "first", session=session)
                entered.set()
                release.wait(5)

        holder = threading.Thread(target=hold)
        holder.start()
        assert entered.wait(5)
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        other.finish_action("r1", "second")
        holder.join(5)
        assert store.action_done("r1", "first") and store.action_done("r1", "second")
        assert time.monotonic() - started >= 0.2  # one writer at a time: the second waited for the first


def test_a_check_then_write_is_atomic_across_connections(store: Store, db_url: str) -> None:
    # The agent checks an action, does the work, then records it, in one transaction: another connection
    # writing the same action meanwhile must wait for that transaction (on PostgreSQL too), not slip in
    # between the check and the write and make it fail on the unique constraint.
    errors: list[BaseException] = []
    with Store.open(db_url) as other:
        checked, release = threading.Event(), threading.Event()

        def first() -> None:
            try:
                with store.session() as session:
                    assert not store.action_done("r1", "fuse", session=session)
                    assert store.get_round("r1", session=session) is None
                    checked.set()
                    release.wait(5)
                    store.finish_action("r1", "fuse", detail="first", session=session)
                    store.save_round("r1", state="open", leader="DC1", session=session)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                checked.set()

        holder = threading.Thread(target=first)
        holder.start()
        assert checked.wait(5)
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        other.finish_action("r1", "fuse", detail="second")
        other.save_round("r1", state="fused")
        holder.join(5)
        assert errors == []
        assert time.monotonic() - started >= 0.2
        assert store.action("r1", "fuse").detail == "second"  # written after the first transaction committed
        assert (store.get_round("r1").state, store.get_round("r1").leader) == ("fused", "DC1")


# --- checkpointer ---

def test_sql_checkpointer_resumes_where_it_left_off(db_url: str) -> None:
    with Store.open(db_url) as store:
        checkpointer: Checkpointer = SqlCheckpointer(store, "task1", "swarmfuse")
        assert checkpointer.position == Position()
        checkpointer.checkpoint_transaction(4, "tx-a")
        assert checkpointer.position == Position(4, "tx-a")
        checkpointer.checkpoint_block(4)
        assert checkpointer.position == Position(5, None)
        SqlCheckpointer(store, "task2", "swarmfuse").checkpoint_block(9)
    with Store.open(db_url) as reopened:
        assert SqlCheckpointer(reopened, "task1", "swarmfuse").position == Position(5, None)
        assert SqlCheckpointer(reopened, "task2", "swarmfuse").position == Position(10, None)
        assert SqlCheckpointer(reopened, "task1", "other").position == Position()
        with reopened.session() as session:
            assert session.scalar(select(text("count(*)")).select_from(text("events_checkpoint"))) == 2


class _BusyCursor:
    """Answers ``database is locked`` to its first ``busy`` statements, then ``error`` (or nothing)."""

    def __init__(self, busy: int, error: str | None = None) -> None:
        self.busy, self.error, self.calls = busy, error, 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.busy:
            raise sqlite3.OperationalError("database is locked")
        if self.error:
            raise sqlite3.OperationalError(self.error)


def test_switching_a_new_sqlite_database_to_wal_waits_for_the_other_connections() -> None:
    # SQLite answers at once, without its busy handler, when another connection is switching the same new
    # database to WAL mode; the store retries instead of failing to open.
    cursor = _BusyCursor(busy=3)
    _enable_wal(cursor)  # type: ignore[arg-type]
    assert cursor.calls == 4
    broken = _BusyCursor(busy=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        _enable_wal(broken)  # type: ignore[arg-type]
    assert broken.calls == 2
