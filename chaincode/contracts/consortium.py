"""What every consortium contract shares: the task's roles, the electorate and the activity index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from swarmfuse.chaincode.contract import Conflict, Context, Contract, Forbidden
from swarmfuse.chaincode.contract.endorsement import owner_and_majority
from swarmfuse.chaincode.contract.metadata import TransactionInfo
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import (
    Activity,
    Confirmation,
    Member,
    MemberStatus,
    Registration,
    Roster,
    Standing,
    TaskRecord,
)
from swarmfuse.chaincode.stub import readable_key

AUDITOR = "auditor"
FOUNDER = "founder"
MEMBER = "member"
REGISTERED = "registered"

READERS = (FOUNDER, REGISTERED, AUDITOR)
"""Who may run the queries: founders, any org that has registered (whatever its status), and auditors."""

NOT_ACTIVE = "Conflict: the task is not active yet (not every founder confirmed it)"

NOT_INITIALISED = (
    "the task is not initialised: no configuration has been confirmed by every founder it names "
    "(Task:Init by one founder, then Task:Confirm by each other founder)"
)


def load_task(ctx: Context) -> TaskRecord:
    """The active task; ``Conflict`` while no configuration has been confirmed by all its founders."""
    task = ctx.get(keys.task_key(), TaskRecord)
    if task is None:
        raise Conflict(NOT_INITIALISED)
    return task


def load_member(ctx: Context, org: str) -> Member | None:
    return load_members(ctx, [org])[0]


def load_members(ctx: Context, orgs: Sequence[str]) -> list[Member | None]:
    """Each org's registration joined with its standing (``None``: not registered), read together."""
    raw = ctx.read_many([*(keys.member_key(o) for o in orgs), *(keys.standing_key(o) for o in orgs)])
    members: list[Member | None] = []
    for registration, standing in zip(raw[: len(orgs)], raw[len(orgs) :], strict=True):
        if registration is None or standing is None:
            members.append(None)
        else:
            members.append(Member.of(Registration.model_validate_json(registration),
                                     Standing.model_validate_json(standing)))
    return members


def load_standings(ctx: Context, orgs: Sequence[str]) -> list[Standing | None]:
    """Each org's standing (status and epoch) alone (``None``: not registered)."""
    return ctx.get_many([keys.standing_key(o) for o in orgs], Standing)


def majority_of(voters: int) -> int:
    """Smallest count strictly above half of ``voters`` (at least 1)."""
    return voters // 2 + 1


MIN_SUSPENSION_VOTES = 2
"""No single member may suspend another: a suspension needs at least this many votes."""


def admission_threshold(counted: int) -> int:
    """Approvals that admit a pending org or reinstate a suspended one, ``counted`` orgs in the electorate."""
    return majority_of(counted)


def suspension_threshold(others: int) -> int | None:
    """Votes that suspend an active org, ``others`` orgs counted besides it; ``None``: it cannot be suspended."""
    return majority_of(others) if others >= MIN_SUSPENSION_VOTES else None


def abort_threshold(active_participants: int) -> int:
    """Votes that abort a round before its deadline, ``active_participants`` being active members now."""
    return majority_of(active_participants)


@dataclass(frozen=True)
class Electorate:
    """The orgs counted in a membership majority at this moment, with their membership epochs.

    Counted: every founder that is active or has not registered yet (it confirmed the task, so
    nothing is decided behind its back before it registers; it cannot vote until it registers), and
    every admitted non-founder that is active. Not counted: pending, suspended and departed orgs.
    ``registered`` are the counted orgs that can have voted (they have an active record).
    """

    epochs: dict[str, int]
    registered: frozenset[str]

    def __len__(self) -> int:
        return len(self.epochs)

    def without(self, org: str) -> Electorate:
        return Electorate(
            {o: e for o, e in self.epochs.items() if o != org}, frozenset(self.registered - {org})
        )


def load_roster(ctx: Context) -> Roster:
    return ctx.get(keys.roster_key(), Roster) or Roster()


def own_act_policy(ctx: Context, org: str) -> bytes:
    """The endorsement policy of a key that records ``org``'s own act (its vote, join, acknowledgement, abort
    vote, sent exchange, summary, scoring reply): ``org``'s peer and a majority of the task's orgs (founders
    and admitted members) with it. Once the key exists, no set of other orgs can rewrite or delete it."""
    task = load_task(ctx)
    return owner_and_majority(org, [*task.founders, *load_roster(ctx).admitted, org])


def record_confirmation(ctx: Context, key: str, sha256: str, org: str, founders: Sequence[str]) -> None:
    """Write ``org``'s own confirmation of ``sha256`` under ``key``, with its key-level policy: its peer and a
    majority of the founders. A proposal's list of confirmations is shared state; this record is the founder's act."""
    record = Confirmation(sha256=sha256, org=org, confirmed_at=ctx.now, tx_id=ctx.tx_id)
    ctx.put(key, record, policy=owner_and_majority(org, founders))


def electorate(ctx: Context, task: TaskRecord) -> Electorate:
    """Read the founders' records (one read each) and the roster of admitted non-founders (one read)."""
    epochs: dict[str, int] = {}
    registered: set[str] = set()
    for org, member in zip(task.founders, load_standings(ctx, task.founders), strict=True):
        if member is None:
            epochs[org] = 0
        elif member.status is MemberStatus.ACTIVE:
            epochs[org] = member.epoch
            registered.add(org)
    for org, epoch in load_roster(ctx).admitted.items():
        epochs[org] = epoch
        registered.add(org)
    return Electorate(epochs, frozenset(registered))


class ConsortiumContract(Contract):
    """Base of the task contracts.

    Nothing but ``Task`` runs before the task is active. Roles: ``founder`` (org named in the active
    task), ``member`` (registered and active), ``registered`` (any status), ``auditor`` (an org the
    task names as auditor; certificate OUs and attributes grant nothing, since any org's CA can
    issue them). Auditors may run evaluate transactions only. Every write transaction also writes
    an ``activity`` index entry for the creator's org.
    """

    def prepare(self, ctx: Context, tx: TransactionInfo) -> None:
        load_task(ctx)

    def roles(self, ctx: Context) -> set[str]:
        task = ctx.get(keys.task_key(), TaskRecord)
        if task is None:
            return set()
        org = ctx.client.mspid
        held: set[str] = set()
        if org in task.auditors:
            held.add(AUDITOR)
        if org in task.founders:
            held.add(FOUNDER)
        [standing] = load_standings(ctx, [org])
        if standing is not None:
            held.add(REGISTERED)
            if standing.status is MemberStatus.ACTIVE:
                held.add(MEMBER)
        return held

    def before_transaction(self, ctx: Context, tx: TransactionInfo) -> None:
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
