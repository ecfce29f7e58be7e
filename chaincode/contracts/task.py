"""``Task``: the channel's founding record, agreed by every founding org before anything else runs.

One founder proposes a configuration (``Task:Init``); it stays pending until every other founder
it names confirms the same configuration hash (``Task:Confirm``). The first configuration confirmed
by all its founders becomes the task; until then every other transaction of the chaincode is
refused. A proposal never replaces another (each lives under its own hash), so nobody can push an
agreed proposal aside, and a proposal naming founders who do not agree simply stays pending.
"""

from __future__ import annotations

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, Forbidden, NotFound, transaction
from swarmfuse.chaincode.contract.metadata import TransactionInfo
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import READERS, ConsortiumContract, load_task, record_confirmation
from swarmfuse.chaincode.contracts.fields import Sha256
from swarmfuse.chaincode.contracts.records import ProposalStatus, TaskConfig, TaskProposal, TaskRecord

ALREADY = "Conflict: a task configuration is already active"


def _active(ctx: Context) -> TaskRecord | None:
    return ctx.get(keys.task_key(), TaskRecord)


class Task(ConsortiumContract):
    """Propose the task's configuration, confirm it by every founder, read it."""

    def prepare(self, ctx: Context, tx: TransactionInfo) -> None:
        if tx.name == "Get":
            load_task(ctx)

    @transaction(
        event="TaskProposed",
        errors=(
            "BadRequest: malformed config (two or more distinct founders), or task differs from the channel",
            "Forbidden: caller's org is not a founder of the config",
            ALREADY,
            "Conflict: this configuration is proposed already (confirm it instead)",
        ),
    )
    def init(self, ctx: Context, config: TaskConfig) -> TaskProposal:
        """Propose the founding member orgs and auditor orgs; pending until every named founder confirms."""
        if _active(ctx) is not None:
            raise Conflict(f"task {ctx.stub.channel_id} is already initialised")
        if config.task != ctx.stub.channel_id:
            raise BadRequest(f"config names task {config.task!r} but this is channel {ctx.stub.channel_id!r}")
        org = ctx.client.mspid
        if org not in config.founders:
            raise Forbidden(f"{org} is not among the founders ({', '.join(config.founders)})")
        digest = config.sha256()
        if ctx.read(keys.task_proposal_key(digest)) is not None:
            raise Conflict(f"configuration {digest} is proposed already; confirm it with Task:Confirm")
        proposal = TaskProposal(
            **config.model_dump(),
            config_sha256=digest,
            status=ProposalStatus.PENDING,
            proposed_by=org,
            proposed_at=ctx.now,
            confirmed_by=[org],
            awaiting=[f for f in config.founders if f != org],
            tx_id=ctx.tx_id,
        )
        ctx.put(keys.task_proposal_key(digest), proposal)
        record_confirmation(ctx, keys.confirmation_key(digest, org), digest, org, config.founders)
        ctx.emit(
            {
                "task": proposal.task,
                "config_sha256": digest,
                "founders": proposal.founders,
                "auditors": proposal.auditors,
                "awaiting": proposal.awaiting,
            }
        )
        return proposal

    @transaction(
        event="TaskConfirmed",
        errors=(
            "BadRequest: malformed hash",
            "NotFound: no proposal with this hash",
            "Forbidden: caller's org is not a founder of the proposal",
            ALREADY,
            "Conflict: caller already confirmed",
        ),
    )
    def confirm(self, ctx: Context, config_sha256: Sha256) -> TaskProposal:
        """A founder confirms a proposed configuration by its hash; the last confirmation activates the task."""
        if _active(ctx) is not None:
            raise Conflict(f"task {ctx.stub.channel_id} is already initialised")
        proposal = ctx.get(keys.task_proposal_key(config_sha256), TaskProposal)
        if proposal is None:
            raise NotFound(f"no task configuration with SHA-256 {config_sha256} was proposed")
        org = ctx.client.mspid
        if org not in proposal.founders:
            raise Forbidden(f"{org} is not among the founders of {config_sha256} ({', '.join(proposal.founders)})")
        if org in proposal.confirmed_by:
            raise Conflict(f"{org} has already confirmed {config_sha256}")
        proposal = proposal.confirmed(org, proposal.founders)
        ctx.put(keys.task_proposal_key(config_sha256), proposal)
        record_confirmation(ctx, keys.confirmation_key(config_sha256, org), config_sha256, org, proposal.founders)
        if proposal.status is ProposalStatus.ACTIVE:
            ctx.put(
                keys.task_key(),
                TaskRecord(
                    **proposal.config_only().model_dump(),
                    config_sha256=config_sha256,
                    proposed_by=proposal.proposed_by,
                    confirmed_by=proposal.confirmed_by,
                    activated_at=ctx.now,
                    tx_id=ctx.tx_id,
                ),
            )
        ctx.emit(
            {
                "task": proposal.task,
                "config_sha256": config_sha256,
                "by": org,
                "awaiting": proposal.awaiting,
                "status": proposal.status.value,
            }
        )
        return proposal

    @transaction(
        evaluate=True,
        errors=("BadRequest: malformed hash", "NotFound: no proposal with this hash"),
    )
    def proposal(self, ctx: Context, config_sha256: Sha256) -> TaskProposal:
        """A proposed configuration and its confirmations (any identity on the channel may read it)."""
        proposal = ctx.get(keys.task_proposal_key(config_sha256), TaskProposal)
        if proposal is None:
            raise NotFound(f"no task configuration with SHA-256 {config_sha256} was proposed")
        active = _active(ctx)
        if proposal.status is ProposalStatus.PENDING and active is not None:
            proposal = proposal.model_copy(update={"status": ProposalStatus.SUPERSEDED})
        return proposal

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Conflict: not initialised", "Forbidden: caller is not registered nor an auditor"),
    )
    def get(self, ctx: Context) -> TaskRecord:
        """The active task configuration."""
        return load_task(ctx)
