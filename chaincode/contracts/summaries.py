"""``Summaries``: what each DC offers, per modality, versioned; never raw data."""

from __future__ import annotations

from swarmfuse.chaincode.contract import BadRequest, Context, NotFound, transaction
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import (
    MEMBER,
    READERS,
    ConsortiumContract,
    load_member,
    own_act_policy,
)
from swarmfuse.chaincode.contracts.fields import Modality, MspId
from swarmfuse.chaincode.contracts.records import Summary, SummaryInput

SUMMARY_MAX_BYTES = 8192
"""Limit on a ``Summaries:Publish`` argument: summaries hold counts and hashes, not data."""


def load_summary(ctx: Context, org: str, modality: str) -> Summary:
    summary = ctx.get(keys.summary_key(org, modality), Summary)
    if summary is None:
        raise NotFound(f"{org} has published no {modality} summary")
    return summary


class Summaries(ConsortiumContract):
    """Publish and read data summaries; each publication is a new version of (org, modality)."""

    @transaction(
        allow=(MEMBER,),
        event="SummaryPublished",
        max_bytes=SUMMARY_MAX_BYTES,
        errors=(
            "BadRequest: malformed or over-long summary, or a modality the org did not register",
            "Forbidden: caller is not an active member",
        ),
    )
    def publish(self, ctx: Context, summary: SummaryInput) -> Summary:
        """Publish (or update: the version goes up, the key history keeps the old ones) the caller's summary."""
        org = ctx.client.mspid
        member = load_member(ctx, org)
        if member is None or summary.modality not in member.modalities:
            offered = ", ".join(member.modalities) if member else "none"
            raise BadRequest(f"{org} registered modalities {offered}, not {summary.modality!r}")
        previous = ctx.get(keys.summary_key(org, summary.modality), Summary)
        record = Summary(
            **summary.model_dump(),
            org=org,
            version=1 if previous is None else previous.version + 1,
            published_at=ctx.now,
            tx_id=ctx.tx_id,
        )
        ctx.put(keys.summary_key(org, summary.modality), record, policy=own_act_policy(ctx, org))
        ctx.emit({"org": org, "modality": record.modality, "version": record.version})
        return record

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no such summary"),
    )
    def get(self, ctx: Context, org: MspId, modality: Modality) -> Summary:
        """The latest version of one org's summary for one modality."""
        return load_summary(ctx, org, modality)
