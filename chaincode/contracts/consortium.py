"""What every consortium contract shares: the task's roles, the auditor rule and the activity index."""

from __future__ import annotations

from typing import Any

from swarmfuse.chaincode.contract import Conflict, Context, Contract, Forbidden
from swarmfuse.chaincode.contract.metadata import TransactionInfo
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import Activity, Member, MemberStatus, TaskRecord
from swarmfuse.chaincode.stub import split_composite_key

AUDITOR = "auditor"
FOUNDER = "founder"
MEMBER = "member"
REGISTERED = "registered"

READERS = (FOUNDER, REGISTERED, AUDITOR)
"""Who may run the queries: founders, any org that has registered (whatever its status), and auditors."""


def readable_key(key: str) -> str:
    object_type, attributes = split_composite_key(key)
    return "/".join([object_type, *attributes])


def load_task(ctx: Context) -> TaskRecord:
    task = ctx.get(keys.task_key(), TaskRecord)
    if task is None:
        raise Conflict("the task is not initialised; call Task:Init first")
    return task


def load_member(ctx: Context, org: str) -> Member | None:
    return ctx.get(keys.member_key(org), Member)


class ConsortiumContract(Contract):
    """Base of the task contracts.

    Roles: ``founder`` (org named in ``Task:Init``), ``member`` (registered and active),
    ``registered`` (any status), ``auditor`` (an auditor org, or a certificate with OU ``auditor``
    or attribute ``auditor=true``). Auditors may run evaluate transactions only. Every write
    transaction also writes an ``activity`` index entry for the creator's org.
    """

    def roles(self, ctx: Context) -> set[str]:
        task = ctx.get(keys.task_key(), TaskRecord)
        if task is None:
            return set()
        org = ctx.client.mspid
        held: set[str] = set()
        if org in task.auditors or ctx.client.has_ou(AUDITOR) or ctx.client.has_attribute(AUDITOR):
            held.add(AUDITOR)
        if org in task.founders:
            held.add(FOUNDER)
        member = load_member(ctx, org)
        if member is not None:
            held.add(REGISTERED)
            if member.status is MemberStatus.ACTIVE:
                held.add(MEMBER)
        return held

    def before_transaction(self, ctx: Context, tx: TransactionInfo) -> None:
        load_task(ctx)
        if not tx.spec.evaluate and AUDITOR in self.roles(ctx):
            raise Forbidden(f"{tx.full_name} writes to the ledger; auditors ({ctx.client.mspid}) may only read")

    def after_transaction(self, ctx: Context, tx: TransactionInfo, result: Any) -> None:
        if tx.spec.evaluate or not ctx.written_keys:
            return
        org = ctx.client.mspid
        entry = Activity(
            org=org,
            tx_id=ctx.tx_id,
            timestamp=ctx.now,
            function=tx.full_name,
            keys=sorted({readable_key(k) for k in ctx.written_keys}),
        )
        ctx.put(keys.activity_key(org, ctx.now, ctx.tx_id), entry)
