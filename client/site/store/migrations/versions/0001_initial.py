"""Initial site store: datasets, events checkpoint, rounds, artefacts, actions.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("manifest_path", sa.Text(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("entity_count", sa.Integer(), nullable=False),
        sa.Column("feature_dim", sa.Integer(), nullable=True),
        sa.Column("extractor_sha256", sa.String(64), nullable=True),
        _timestamp("created"),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.CheckConstraint("modality IN ('text', 'image', 'label')", name="ck_datasets_modality"),
    )
    op.create_index("ix_datasets_modality", "datasets", ["modality"])

    op.create_table(
        "events_checkpoint",
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("chaincode", sa.String(255), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=True),
        sa.Column("tx_id", sa.String(255), nullable=True),
        _timestamp("updated"),
        sa.PrimaryKeyConstraint("channel", "chaincode", name="pk_events_checkpoint"),
    )

    op.create_table(
        "rounds",
        sa.Column("round_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("leader", sa.String(64), nullable=True),
        sa.Column("aligned_count", sa.Integer(), nullable=True),
        sa.Column("commitment", sa.String(64), nullable=True),
        _timestamp("updated"),
        sa.PrimaryKeyConstraint("round_id", name="pk_rounds"),
    )

    op.create_table(
        "artefacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("round_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("peer_org", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _timestamp("created"),
        sa.PrimaryKeyConstraint("id", name="pk_artefacts"),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_artefacts_direction"),
        sa.CheckConstraint("status IN ('pending', 'verified', 'rejected')", name="ck_artefacts_status"),
        sa.CheckConstraint("bytes >= 0", name="ck_artefacts_bytes"),
    )
    op.create_index(
        "ix_artefacts_round_id_kind_direction_peer_org", "artefacts", ["round_id", "kind", "direction", "peer_org"]
    )

    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("round_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        _timestamp("created"),
        _timestamp("updated"),
        sa.PrimaryKeyConstraint("id", name="pk_actions"),
        sa.UniqueConstraint("round_id", "action", name="uq_actions_round_id_action"),
        sa.CheckConstraint("status IN ('started', 'done', 'failed')", name="ck_actions_status"),
    )


def downgrade() -> None:
    op.drop_table("actions")
    op.drop_index("ix_artefacts_round_id_kind_direction_peer_org", table_name="artefacts")
    op.drop_table("artefacts")
    op.drop_table("rounds")
    op.drop_table("events_checkpoint")
    op.drop_index("ix_datasets_modality", table_name="datasets")
    op.drop_table("datasets")
