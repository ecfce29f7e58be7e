"""A site's local store: SQLAlchemy 2 models, Alembic migrations applied on open, the events checkpointer.

    store = Store.for_site(home, "DC2")            # <home>/sites/DC2/site.sqlite, migrated to head
    store = Store.open("postgresql+psycopg://...")  # or any SQLAlchemy URL
    with store.session() as s: ...                  # one transaction; every method also takes session=
    network.chaincode_events("swarmfuse", checkpointer=SqlCheckpointer(store, "task1", "swarmfuse"))
"""

from swarmfuse.client.site.store.checkpoint import SqlCheckpointer
from swarmfuse.client.site.store.db import (
    MIGRATIONS,
    Store,
    StoreError,
    alembic_config,
    current_revision,
    head_revision,
    site_dir,
    upgrade,
)
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
    EventsCheckpoint,
    Modality,
    Round,
    RoundRecord,
)

__all__ = [
    "MIGRATIONS", "Action", "ActionRecord", "ActionStatus", "Artefact", "ArtefactRecord", "ArtefactStatus", "Base",
    "Dataset", "DatasetRecord", "Direction", "EventsCheckpoint", "Modality", "Round", "RoundRecord", "SqlCheckpointer",
    "Store", "StoreError", "alembic_config", "current_revision", "head_revision", "site_dir", "upgrade",
]
