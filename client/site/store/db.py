"""The site store: one SQLAlchemy database per site, migrated to the newest schema whenever it is opened.

SQLite (the default, a file per site) and PostgreSQL are both supported, with the same guarantee: the store's
transactions run one at a time, so a check-then-write (is this action done? then do it and record it) is
atomic, and concurrent writers wait instead of failing or slipping in between. On SQLite every transaction
starts with ``BEGIN IMMEDIATE`` (the write lock up front), in WAL mode with a busy timeout; on PostgreSQL
every transaction starts by taking a transaction-scoped advisory lock of the database (released at commit or
rollback), with a lock timeout of the same length. Either way a thread that opens a second transaction
while its first is still open waits for itself until that timeout: inside a session pass it on (``session=``).
Strings longer than their column and NUL characters are refused (:class:`StoreError`) on every database,
not only on PostgreSQL, which enforces both.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Self

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, String, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Mapper, Session, sessionmaker
from sqlalchemy.pool import StaticPool

from swarmfuse.client.site.store.models import (
    Action,
    ActionRecord,
    ActionStatus,
    Artefact,
    ArtefactRecord,
    ArtefactStatus,
    Base,
    Dataset,
    DatasetRecord,
    Direction,
    Modality,
    Round,
    RoundRecord,
    utcnow,
)
from swarmfuse.errors import SwarmfuseError
from swarmfuse.retry import retrying

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_FILE = "site.sqlite"
_ORG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BUSY_TIMEOUT_MS = 30_000
_PG_MIGRATION_LOCK = 0x5377_6172_6D53  # any constant: serialises concurrent migrations of one PostgreSQL database
_PG_STORE_LOCK = 0x5377_6172_6D54  # held by every store transaction on PostgreSQL: one at a time, as on SQLite
_CONNECT_TIMEOUT_S = 10  # a PostgreSQL server that does not answer (unless the URL sets connect_timeout)


class StoreError(SwarmfuseError, RuntimeError):
    """The store cannot be opened, migrated or used as asked."""


def site_dir(home: Path, org: str) -> Path:
    """``<home>/sites/<org>``: the folder of one site's store, artefacts and TLS material."""
    if not _ORG_NAME.match(org):
        raise StoreError(f"org name {org!r} is not a valid org name (letters, digits, '.', '_', '-'; at most 64)")
    return Path(home) / "sites" / org


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic configuration for the store's migrations, without any ``alembic.ini``.

    With ``connection`` the migrations run on it (inside the caller's transaction); with ``url`` Alembic
    connects itself (e.g. ``command.revision(alembic_config(url=...), autogenerate=True, message=...)``).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision this code knows."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise StoreError(f"the store's migrations have {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    memory = _is_memory(url)
    if not memory and url.database:
        folder = Path(url.database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store's folder {folder}: {exc.strerror or exc}") from exc
    engine = create_engine(
        url, echo=echo, connect_args={"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000},
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the sqlite3 module, emits BEGIN
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if not memory:
                _enable_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database to WAL mode, waiting up to the busy timeout for other connections.

    SQLite answers "database is locked" at once, without calling the busy handler, to a connection that asks for
    WAL mode while another one is switching a new database to it; so the switch is retried here.
    """
    retrying(lambda: cursor.execute("PRAGMA journal_mode = WAL"),
             lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc),
             within=_BUSY_TIMEOUT_MS / 1000, first_wait=0.005, max_wait=0.2)


def _postgresql_engine(url: URL, echo: bool) -> Engine:
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": _CONNECT_TIMEOUT_S}
    engine = create_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # READ COMMITTED alone would let another connection write between this transaction's check and its
        # write; the lock makes store transactions take turns, as BEGIN IMMEDIATE does on SQLite.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {_BUSY_TIMEOUT_MS}")
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_STORE_LOCK})")

    return engine


def _create_engine(url: str | URL, echo: bool) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, echo)
        if parsed.get_backend_name() == "postgresql":
            return _postgresql_engine(parsed, echo)
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    except ImportError as exc:
        raise StoreError(f"cannot use database URL {_masked(url)}: its driver is not installed ({exc}); for "
                         "postgresql+psycopg:// URLs: pip install 'swarmfuse[postgres]'") from exc
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"cannot use database URL {_masked(url)}: {exc}") from exc


@event.listens_for(Base, "before_insert", propagate=True)
@event.listens_for(Base, "before_update", propagate=True)
def _check_strings(_mapper: Mapper[Any], _connection: Connection, target: Base) -> None:
    """Refuse what PostgreSQL refuses, on SQLite too: a string longer than its column, a NUL character."""
    for column in target.__table__.columns:
        if not isinstance(column.type, String):
            continue
        value = getattr(target, column.key, None)
        if not isinstance(value, str):
            continue
        if column.type.length is not None and len(value) > column.type.length:
            raise StoreError(f"{target.__tablename__}.{column.name} holds at most {column.type.length} characters, "
                             f"got {len(value)} ({value[:40]!r}...)")
        if "\x00" in value:
            raise StoreError(f"{target.__tablename__}.{column.name} cannot hold a NUL character ({value[:40]!r})")


def _masked(url: str | URL) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database (``None``: never migrated)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(versions) > 1:
        raise StoreError(f"the store records {len(versions)} schema revisions ({', '.join(versions)}); expected one")
    return versions[0] if versions else None


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision``, in the connection's transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    before = current_revision(connection)
    if revision == "head" and before == head_revision():
        return
    try:
        command.upgrade(alembic_config(connection), revision)
    except CommandError as exc:
        raise StoreError(f"cannot migrate the store from revision {before} to {revision}: {exc} "
                         "(a database written by a newer swarmfuse?)") from exc
    after = current_revision(connection)
    log.info("store migrated from revision %s to %s", before or "<empty>", after)


class Store:
    """A site's local database. Open with :meth:`open` or :meth:`for_site`; close (or use as a context manager).

    Every method runs in its own transaction, or in the caller's when given ``session=`` (see :meth:`session`),
    so that several writes (an action and an event checkpoint, say) commit together. Inside a session pass it
    on: a second transaction opened by the same thread would wait for the first (busy or lock timeout).
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose database is already migrated; prefer :meth:`open`."""
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # --- opening, closing, transactions ---

    @classmethod
    def open(cls, url: str | URL, *, echo: bool = False) -> Store:
        """Connect to ``url`` (any SQLAlchemy URL) and migrate its schema to the newest revision."""
        engine = _create_engine(url, echo)
        try:
            with engine.begin() as connection:
                upgrade(connection)
        except DBAPIError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the store at {_masked(url)}: {exc.orig}") from exc
        except BaseException:
            engine.dispose()
            raise
        log.debug("store open at %s", _masked(url))
        return cls(engine)

    @classmethod
    def for_site(cls, home: Path, org: str, *, echo: bool = False) -> Store:
        """The default store of ``org`` under a network home: ``<home>/sites/<org>/site.sqlite``."""
        path = site_dir(home, org) / SQLITE_FILE
        return cls.open(URL.create("sqlite", database=str(path)), echo=echo)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def revision(self) -> str | None:
        """The schema revision of the database (``None`` for an empty one)."""
        with self.engine.connect() as connection:
            return current_revision(connection)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def transaction(self, session: Session | None = None) -> Iterator[Session]:
        """``session`` itself when given (the caller's transaction), else a new :meth:`session`."""
        if session is not None:
            yield session
        else:
            with self.session() as own:
                yield own

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # --- datasets ---

    def add_dataset(self, *, modality: Modality | str, manifest_path: str | Path, manifest_sha256: str,
                    fingerprint: str, entity_count: int, feature_dim: int | None = None,
                    extractor_sha256: str | None = None, session: Session | None = None) -> DatasetRecord:
        """Register a dataset; registering the same one again (same manifest, data and extractor) returns it."""
        modality = Modality(modality)
        values = {"modality": modality.value, "manifest_sha256": manifest_sha256, "fingerprint": fingerprint,
                  "extractor_sha256": extractor_sha256}
        with self.transaction(session) as s:
            query = select(Dataset).filter_by(**values).order_by(Dataset.id.desc()).limit(1)
            existing = s.scalars(query).first()
            if existing is not None and existing.feature_dim == feature_dim:
                return DatasetRecord.of(existing)
            row = Dataset(**values, manifest_path=str(manifest_path), entity_count=entity_count,
                          feature_dim=feature_dim)
            s.add(row)
            s.flush()
            log.info("dataset %d registered: %s, %d entities, fingerprint %s", row.id, modality, entity_count,
                     fingerprint[:12])
            return DatasetRecord.of(row)

    def datasets(self, modality: Modality | str | None = None, *, session: Session | None = None
                 ) -> list[DatasetRecord]:
        """Registered datasets, oldest first (of one modality if given)."""
        query = select(Dataset).order_by(Dataset.id)
        if modality is not None:
            query = query.where(Dataset.modality == Modality(modality).value)
        with self.transaction(session) as s:
            return [DatasetRecord.of(row) for row in s.scalars(query)]

    def latest_dataset(self, modality: Modality | str, *, session: Session | None = None) -> DatasetRecord | None:
        """The most recently registered dataset of ``modality``."""
        found = self.datasets(modality, session=session)
        return found[-1] if found else None

    # --- rounds ---

    def save_round(self, round_id: str, *, state: str | None = None, role: str | None = None,
                   leader: str | None = None, aligned_count: int | None = None, commitment: str | None = None,
                   session: Session | None = None) -> RoundRecord:
        """Create or update this site's view of a round; fields left ``None`` keep their value."""
        given = {"state": state, "role": role, "leader": leader, "aligned_count": aligned_count,
                 "commitment": commitment}
        changes = {k: v for k, v in given.items() if v is not None}
        with self.transaction(session) as s:
            row = s.get(Round, round_id)
            if row is None:
                if state is None:
                    raise StoreError(f"round {round_id!r} is new: its state is required")
                row = Round(round_id=round_id, **changes)
                s.add(row)
            else:
                for key, value in changes.items():
                    setattr(row, key, value)
            s.flush()
            return RoundRecord.of(row)

    def get_round(self, round_id: str, *, session: Session | None = None) -> RoundRecord | None:
        with self.transaction(session) as s:
            row = s.get(Round, round_id)
            return None if row is None else RoundRecord.of(row)

    def rounds(self, state: str | None = None, *, session: Session | None = None) -> list[RoundRecord]:
        """Known rounds, most recently updated first (in ``state`` if given)."""
        query = select(Round).order_by(Round.updated.desc(), Round.round_id)
        if state is not None:
            query = query.where(Round.state == state)
        with self.transaction(session) as s:
            return [RoundRecord.of(row) for row in s.scalars(query)]

    # --- artefacts ---

    def add_artefact(self, round_id: str, *, kind: str, direction: Direction | str, peer_org: str, sha256: str,
                     size: int, path: str | Path | None = None, status: ArtefactStatus | str = ArtefactStatus.PENDING,
                     reason: str | None = None, session: Session | None = None) -> ArtefactRecord:
        """Record one artefact transfer (attempt) of a round; ``size`` in bytes."""
        if size < 0:
            raise StoreError(f"artefact {kind!r} of round {round_id!r}: size {size} is negative")
        row = Artefact(round_id=round_id, kind=kind, direction=Direction(direction).value, peer_org=peer_org,
                       sha256=sha256, bytes=size, path=None if path is None else str(path),
                       status=ArtefactStatus(status).value, reason=reason)
        with self.transaction(session) as s:
            s.add(row)
            s.flush()
            return ArtefactRecord.of(row)

    def set_artefact_status(self, artefact_id: int, status: ArtefactStatus | str, *, reason: str | None = None,
                            path: str | Path | None = None, session: Session | None = None) -> ArtefactRecord:
        """Record the outcome of an artefact's check (``reason`` says why it was rejected)."""
        status = ArtefactStatus(status)
        with self.transaction(session) as s:
            row = s.get(Artefact, artefact_id)
            if row is None:
                raise StoreError(f"no artefact with id {artefact_id}")
            row.status = status.value
            row.reason = reason
            if path is not None:
                row.path = str(path)
            s.flush()
            if status is ArtefactStatus.REJECTED:
                log.warning("artefact %s of round %s from/to %s rejected: %s", row.kind, row.round_id, row.peer_org,
                            reason)
            return ArtefactRecord.of(row)

    def artefacts(self, round_id: str | None = None, *, kind: str | None = None,
                  direction: Direction | str | None = None, peer_org: str | None = None,
                  status: ArtefactStatus | str | None = None, session: Session | None = None
                  ) -> list[ArtefactRecord]:
        """Artefact records matching every given filter, oldest first."""
        query = select(Artefact).order_by(Artefact.id)
        filters = {"round_id": round_id, "kind": kind, "peer_org": peer_org,
                   "direction": None if direction is None else Direction(direction).value,
                   "status": None if status is None else ArtefactStatus(status).value}
        query = query.filter_by(**{k: v for k, v in filters.items() if v is not None})
        with self.transaction(session) as s:
            return [ArtefactRecord.of(row) for row in s.scalars(query)]

    def verified_artefact(self, round_id: str, *, kind: str, direction: Direction | str, peer_org: str,
                          session: Session | None = None) -> ArtefactRecord | None:
        """The latest verified artefact of this (round, kind, direction, peer), if any."""
        found = self.artefacts(round_id, kind=kind, direction=direction, peer_org=peer_org,
                               status=ArtefactStatus.VERIFIED, session=session)
        return found[-1] if found else None

    # --- actions (idempotence) ---

    def action(self, round_id: str, action: str, *, session: Session | None = None) -> ActionRecord | None:
        with self.transaction(session) as s:
            row = s.scalars(select(Action).filter_by(round_id=round_id, action=action)).first()
            return None if row is None else ActionRecord.of(row)

    def action_done(self, round_id: str, action: str, *, session: Session | None = None) -> bool:
        """Whether ``action`` of ``round_id`` finished successfully: then it must not be done again."""
        found = self.action(round_id, action, session=session)
        return found is not None and found.done

    def start_action(self, round_id: str, action: str, detail: str | None = None, *,
                     session: Session | None = None) -> ActionRecord:
        """Mark ``action`` started (again, after a failure or a crash); a finished action stays as it is."""
        return self._set_action(round_id, action, ActionStatus.STARTED, detail, session, keep_done=True)

    def finish_action(self, round_id: str, action: str, detail: str | None = None, *, failed: bool = False,
                      session: Session | None = None) -> ActionRecord:
        """Mark ``action`` done (or failed), creating its row if it was never started."""
        status = ActionStatus.FAILED if failed else ActionStatus.DONE
        return self._set_action(round_id, action, status, detail, session, keep_done=False)

    def actions(self, round_id: str | None = None, *, session: Session | None = None) -> list[ActionRecord]:
        query = select(Action).order_by(Action.id)
        if round_id is not None:
            query = query.where(Action.round_id == round_id)
        with self.transaction(session) as s:
            return [ActionRecord.of(row) for row in s.scalars(query)]

    def _set_action(self, round_id: str, action: str, status: ActionStatus, detail: str | None,
                    session: Session | None, keep_done: bool) -> ActionRecord:
        with self.transaction(session) as s:
            row = s.scalars(select(Action).filter_by(round_id=round_id, action=action)).first()
            if row is None:
                row = Action(round_id=round_id, action=action, status=status.value, detail=detail)
                s.add(row)
            elif not (keep_done and row.status == ActionStatus.DONE.value):
                row.status = status.value
                if detail is not None:
                    row.detail = detail
                row.updated = utcnow()
            s.flush()
            log.debug("round %s action %s: %s", round_id, action, row.status)
            return ActionRecord.of(row)
