"""``Task``: the channel's founding record (founding members and auditor orgs), written once."""

from __future__ import annotations

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, Forbidden, transaction
from swarmfuse.chaincode.contract.metadata import TransactionInfo
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import READERS, ConsortiumContract, load_task
from swarmfuse.chaincode.contracts.records import TaskConfig, TaskRecord


class Task(ConsortiumContract):
    """Initialise the task once, then read its configuration."""

    def before_transaction(self, ctx: Context, tx: TransactionInfo) -> None:
        if tx.name != "Init":
            super().before_transaction(ctx, tx)

    @transaction(
        event="TaskInitialised",
        errors=(
            "BadRequest: malformed config, or task differs from the channel",
            "Forbidden: caller's org is not a founder",
            "Conflict: already initialised",
        ),
    )
    def init(self, ctx: Context, config: TaskConfig) -> TaskRecord:
        """Record the founding member orgs and auditor orgs; callable once, by a founder org."""
        if ctx.stub.get_state(keys.task_key()) is not None:
            raise Conflict(f"task {ctx.stub.channel_id} is already initialised")
        if config.task != ctx.stub.channel_id:
            raise BadRequest(f"config names task {config.task!r} but this is channel {ctx.stub.channel_id!r}")
        if ctx.client.mspid not in config.founders:
            raise Forbidden(f"{ctx.client.mspid} is not among the founders ({', '.join(config.founders)})")
        record = TaskRecord(
            **config.model_dump(), initialised_by=ctx.client.mspid, initialised_at=ctx.now, tx_id=ctx.tx_id
        )
        ctx.put(keys.task_key(), record)
        ctx.emit({"task": record.task, "founders": record.founders, "auditors": record.auditors})
        return record

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Conflict: not initialised", "Forbidden: caller is not registered nor an auditor"),
    )
    def get(self, ctx: Context) -> TaskRecord:
        """The task configuration."""
        return load_task(ctx)
