"""``Membership``: DCs register themselves; non-founders are admitted by a majority of members."""

from __future__ import annotations

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, NotFound, transaction
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import MEMBER, READERS, ConsortiumContract, load_member, load_task
from swarmfuse.chaincode.contracts.fields import MspId
from swarmfuse.chaincode.contracts.records import Member, MemberProfile, MemberStatus


def _active_orgs(ctx: Context) -> list[str]:
    return [m.org for m in ctx.scan(keys.MEMBER, [], Member) if m.status is MemberStatus.ACTIVE]


def majority_of(voters: int) -> int:
    """Smallest count strictly above half of ``voters`` (at least 1)."""
    return voters // 2 + 1


def _require(ctx: Context, org: str) -> Member:
    member = load_member(ctx, org)
    if member is None:
        raise NotFound(f"{org} has not registered")
    return member


def _announce(ctx: Context, member: Member, **extra: object) -> None:
    ctx.emit({"org": member.org, "status": member.status.value, **extra})


class Membership(ConsortiumContract):
    """Register, approve, suspend, leave; the org is always the creator's MSP ID."""

    @transaction(
        event="MemberRegistered",
        max_bytes=4096,
        errors=("BadRequest: malformed profile", "Forbidden: auditors", "Conflict: already registered (and not left)"),
    )
    def register(self, ctx: Context, profile: MemberProfile) -> Member:
        """Register the caller's org; founders are admitted at once, others wait for approvals."""
        org = ctx.client.mspid
        existing = load_member(ctx, org)
        if existing is not None and existing.status is not MemberStatus.LEFT:
            raise Conflict(f"{org} is already registered ({existing.status.value})")
        founder = org in load_task(ctx).founders
        member = Member(
            **profile.model_dump(),
            org=org,
            status=MemberStatus.ACTIVE if founder else MemberStatus.PENDING,
            registered_at=ctx.now,
            updated_at=ctx.now,
        )
        ctx.put(keys.member_key(org), member)
        _announce(ctx, member)
        return member

    @transaction(
        allow=(MEMBER,),
        event="MemberApproved",
        errors=(
            "Forbidden: caller is not an active member",
            "NotFound: org has not registered",
            "BadRequest: approving oneself",
            "Conflict: org is not pending or suspended, or caller already approved",
        ),
    )
    def approve(self, ctx: Context, org: MspId) -> Member:
        """Approve a pending (or reinstate a suspended) org; it becomes active on a majority of active members."""
        approver = ctx.client.mspid
        if org == approver:
            raise BadRequest("an org cannot approve itself")
        member = _require(ctx, org)
        if member.status not in (MemberStatus.PENDING, MemberStatus.SUSPENDED):
            raise Conflict(f"{org} is {member.status.value}; only pending or suspended orgs can be approved")
        if approver in member.approvals:
            raise Conflict(f"{approver} has already approved {org}")
        approvals = sorted([*member.approvals, approver])
        needed = majority_of(len(_active_orgs(ctx)))
        admitted = len(approvals) >= needed
        member = member.model_copy(
            update={
                "approvals": [] if admitted else approvals,
                "suspend_votes": [],
                "status": MemberStatus.ACTIVE if admitted else member.status,
                "updated_at": ctx.now,
            }
        )
        ctx.put(keys.member_key(org), member)
        _announce(ctx, member, approvals=len(approvals), needed=needed, by=approver)
        return member

    @transaction(
        allow=(MEMBER,),
        event="MemberSuspended",
        errors=(
            "Forbidden: caller is not an active member",
            "NotFound: org has not registered",
            "BadRequest: suspending oneself (use Leave)",
            "Conflict: org is not active, or caller already voted",
        ),
    )
    def suspend(self, ctx: Context, org: MspId) -> Member:
        """Vote to suspend an active org; it is suspended on a majority of the other active members."""
        voter = ctx.client.mspid
        if org == voter:
            raise BadRequest("an org cannot suspend itself; use Membership:Leave")
        member = _require(ctx, org)
        if member.status is not MemberStatus.ACTIVE:
            raise Conflict(f"{org} is {member.status.value}; only active orgs can be suspended")
        if voter in member.suspend_votes:
            raise Conflict(f"{voter} has already voted to suspend {org}")
        votes = sorted([*member.suspend_votes, voter])
        needed = majority_of(len(_active_orgs(ctx)) - 1)
        suspended = len(votes) >= needed
        member = member.model_copy(
            update={
                "suspend_votes": [] if suspended else votes,
                "status": MemberStatus.SUSPENDED if suspended else member.status,
                "updated_at": ctx.now,
            }
        )
        ctx.put(keys.member_key(org), member)
        _announce(ctx, member, votes=len(votes), needed=needed, by=voter)
        return member

    @transaction(
        event="MemberLeft",
        errors=("NotFound: caller's org has not registered", "Conflict: already left", "Forbidden: auditors"),
    )
    def leave(self, ctx: Context) -> Member:
        """The caller's org leaves the task (it may register again later)."""
        member = _require(ctx, ctx.client.mspid)
        if member.status is MemberStatus.LEFT:
            raise Conflict(f"{member.org} has already left")
        member = member.model_copy(
            update={"status": MemberStatus.LEFT, "approvals": [], "suspend_votes": [], "updated_at": ctx.now}
        )
        ctx.put(keys.member_key(member.org), member)
        _announce(ctx, member)
        return member

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: org has not registered"),
    )
    def get(self, ctx: Context, org: MspId) -> Member:
        """One org's membership record."""
        return _require(ctx, org)
