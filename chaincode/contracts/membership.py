"""``Membership``: DCs register themselves; admission, reinstatement and suspension go by majority.

Who counts (see :class:`~swarmfuse.chaincode.contracts.consortium.Electorate`) is decided at the
moment of counting, i.e. in the transaction that casts a vote: the founders that are active or not
yet registered, plus the admitted non-founders that are active. A vote counts only while its voter
is still counted with the epoch it voted in (a voter suspended or gone since, even if back again,
no longer counts) and only for the target's current epoch (a status change voids earlier votes).

- admission of a pending org and reinstatement of a suspended org: a majority (more than half) of
  the electorate;
- suspension of an active org: a majority of the electorate without the target, and at least two
  votes; with fewer than two others counted nobody can be suspended (a single member may not
  remove the other), so the remaining path is ``Leave``.

An org that leaves and registers again comes back ``pending`` (or ``suspended``, if it left while
suspended) and needs a majority again: leaving cannot undo a suspension nor shed the votes cast
against it. Only a founder's first registration is active at once.
"""

from __future__ import annotations

from swarmfuse.chaincode.contract import BadRequest, Conflict, Context, NotFound, transaction
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import (
    MEMBER,
    READERS,
    ConsortiumContract,
    Electorate,
    admission_threshold,
    electorate,
    load_member,
    load_roster,
    load_task,
    own_act_policy,
    suspension_threshold,
)
from swarmfuse.chaincode.contracts.fields import MspId
from swarmfuse.chaincode.contracts.records import (
    Member,
    MemberProfile,
    MemberStatus,
    MemberView,
    Question,
    Roster,
    TaskRecord,
    Vote,
)

NOT_ACTIVE = "Forbidden: caller is not an active member"


def _require(ctx: Context, org: str) -> Member:
    member = load_member(ctx, org)
    if member is None:
        raise NotFound(f"{org} has not registered")
    return member


def _counted_votes(ctx: Context, question: Question, target: Member, voters: Electorate) -> list[str]:
    """The orgs of ``voters`` whose vote on ``question`` about ``target`` (its current epoch) counts now."""
    can_have_voted = sorted(voters.registered)
    found = ctx.get_many([keys.vote_key(question.value, target.org, target.epoch, v) for v in can_have_voted], Vote)
    return [v for v, vote in zip(can_have_voted, found, strict=True) if vote and vote.voter_epoch == voters.epochs[v]]


def view(ctx: Context, member: Member, task: TaskRecord) -> MemberView:
    """The record with the votes that count now on its open question (admission or suspension)."""
    voters = electorate(ctx, task)
    approvals: list[str] = []
    suspend_votes: list[str] = []
    if member.status in (MemberStatus.PENDING, MemberStatus.SUSPENDED):
        approvals = _counted_votes(ctx, Question.ADMIT, member, voters)
    elif member.status is MemberStatus.ACTIVE:
        voters = voters.without(member.org)
        suspend_votes = _counted_votes(ctx, Question.SUSPEND, member, voters)
    return MemberView(
        **member.model_dump(), approvals=approvals, suspend_votes=suspend_votes, electorate=len(voters)
    )


def _change_status(ctx: Context, member: Member, task: TaskRecord, status: MemberStatus,
                   profile: MemberProfile | None = None, **update: object) -> Member:
    """Write the new standing (epoch + 1) and, from the org itself registering again, its new ``profile``;
    keep the roster of active non-founders in step."""
    was_active = member.status is MemberStatus.ACTIVE
    changes = {"status": status, "epoch": member.epoch + 1, "updated_at": ctx.now, **update}
    changed = member.model_copy(update=changes | (profile.model_dump() if profile is not None else {}))
    ctx.put(keys.standing_key(member.org), changed.standing())
    if profile is not None:
        ctx.put(keys.member_key(member.org), changed.registration(), policy=own_act_policy(ctx, member.org))
    now_active = status is MemberStatus.ACTIVE
    if member.org not in task.founders and was_active != now_active:
        admitted = dict(load_roster(ctx).admitted)
        if now_active:
            admitted[member.org] = changed.epoch
        else:
            admitted.pop(member.org, None)
        ctx.put(keys.roster_key(), Roster(admitted=dict(sorted(admitted.items()))))
    return changed


def _cast(ctx: Context, question: Question, target: Member, voter: str, voters: Electorate) -> list[str]:
    """Record ``voter``'s vote (refusing a second one) and return every vote that counts, sorted."""
    key = keys.vote_key(question.value, target.org, target.epoch, voter)
    earlier = ctx.get(key, Vote)
    if earlier is not None and earlier.voter_epoch == voters.epochs[voter]:
        verb = "approved" if question is Question.ADMIT else "voted to suspend"
        raise Conflict(f"{voter} has already {verb} {target.org}")
    others = _counted_votes(ctx, question, target, voters.without(voter))
    ctx.put(
        key,
        Vote(
            question=question,
            target=target.org,
            target_epoch=target.epoch,
            voter=voter,
            voter_epoch=voters.epochs[voter],
            cast_at=ctx.now,
            tx_id=ctx.tx_id,
        ),
        policy=own_act_policy(ctx, voter),
    )
    return sorted([*others, voter])


def _announce(ctx: Context, member: Member, **extra: object) -> None:
    ctx.emit({"org": member.org, "status": member.status.value, "epoch": member.epoch, **extra})


class Membership(ConsortiumContract):
    """Register, approve, suspend, leave; the org is always the creator's MSP ID."""

    @transaction(
        event="MemberRegistered",
        max_bytes=4096,
        errors=(
            "BadRequest: malformed profile",
            "Forbidden: auditors",
            "Conflict: already registered (and not left)",
            "Conflict: the task is not active yet",
        ),
    )
    def register(self, ctx: Context, profile: MemberProfile) -> Member:
        """Register the caller's org: a founder's first registration is active, everyone else waits for a majority."""
        org = ctx.client.mspid
        existing = load_member(ctx, org)
        task = load_task(ctx)
        if existing is None:
            status = MemberStatus.ACTIVE if org in task.founders else MemberStatus.PENDING
            member = Member(
                **profile.model_dump(), org=org, status=status, registered_at=ctx.now, updated_at=ctx.now
            )
            ctx.put(keys.member_key(org), member.registration(), policy=own_act_policy(ctx, org))
            ctx.put(keys.standing_key(org), member.standing())
        elif existing.status is MemberStatus.LEFT:
            status = MemberStatus.SUSPENDED if existing.left_from is MemberStatus.SUSPENDED else MemberStatus.PENDING
            member = _change_status(ctx, existing, task, status, profile, left_from=None)
        else:
            raise Conflict(f"{org} is already registered ({existing.status.value})")
        _announce(ctx, member)
        return member

    @transaction(
        allow=(MEMBER,),
        event="MemberApproved",
        errors=(
            NOT_ACTIVE,
            "NotFound: org has not registered",
            "BadRequest: approving oneself",
            "Conflict: org is not pending or suspended, or caller already approved",
        ),
    )
    def approve(self, ctx: Context, org: MspId) -> MemberView:
        """Approve a pending (or reinstate a suspended) org; active once more than half the electorate approved."""
        approver = ctx.client.mspid
        if org == approver:
            raise BadRequest("an org cannot approve itself")
        member = _require(ctx, org)
        if member.status not in (MemberStatus.PENDING, MemberStatus.SUSPENDED):
            raise Conflict(f"{org} is {member.status.value}; only pending or suspended orgs can be approved")
        task = load_task(ctx)
        voters = electorate(ctx, task)
        approvals = _cast(ctx, Question.ADMIT, member, approver, voters)
        needed = admission_threshold(len(voters))
        if len(approvals) >= needed:
            member = _change_status(ctx, member, task, MemberStatus.ACTIVE)
            approvals_now: list[str] = []
        else:
            approvals_now = approvals
        _announce(ctx, member, approvals=len(approvals), needed=needed, electorate=len(voters), by=approver)
        return MemberView(**member.model_dump(), approvals=approvals_now, electorate=len(voters))

    @transaction(
        allow=(MEMBER,),
        event="MemberSuspended",
        errors=(
            NOT_ACTIVE,
            "NotFound: org has not registered",
            "BadRequest: suspending oneself (use Leave)",
            "Conflict: org is not active, caller already voted, or fewer than two other orgs are counted",
        ),
    )
    def suspend(self, ctx: Context, org: MspId) -> MemberView:
        """Vote to suspend an active org: suspended on a majority (and at least two) of the electorate without it."""
        voter = ctx.client.mspid
        if org == voter:
            raise BadRequest("an org cannot suspend itself; use Membership:Leave")
        member = _require(ctx, org)
        if member.status is not MemberStatus.ACTIVE:
            raise Conflict(f"{org} is {member.status.value}; only active orgs can be suspended")
        task = load_task(ctx)
        voters = electorate(ctx, task).without(org)
        needed = suspension_threshold(len(voters))
        if needed is None:
            raise Conflict(
                f"suspending {org} needs the votes of at least two other counted orgs; {len(voters)} counted "
                "(no single member may suspend another)"
            )
        votes = _cast(ctx, Question.SUSPEND, member, voter, voters)
        if len(votes) >= needed:
            member = _change_status(ctx, member, task, MemberStatus.SUSPENDED)
            votes_now: list[str] = []
        else:
            votes_now = votes
        _announce(ctx, member, votes=len(votes), needed=needed, electorate=len(voters), by=voter)
        return MemberView(**member.model_dump(), suspend_votes=votes_now, electorate=len(voters))

    @transaction(
        event="MemberLeft",
        errors=("NotFound: caller's org has not registered", "Conflict: already left", "Forbidden: auditors"),
    )
    def leave(self, ctx: Context) -> Member:
        """The caller's org leaves the task; registering again needs a majority (a suspension stays)."""
        member = _require(ctx, ctx.client.mspid)
        if member.status is MemberStatus.LEFT:
            raise Conflict(f"{member.org} has already left")
        member = _change_status(ctx, member, load_task(ctx), MemberStatus.LEFT, left_from=member.status)
        _announce(ctx, member)
        return member

    @transaction(
        evaluate=True,
        allow=READERS,
        errors=("Forbidden: caller is not registered nor an auditor", "NotFound: org has not registered"),
    )
    def get(self, ctx: Context, org: MspId) -> MemberView:
        """One org's membership record, with the votes that count now on its open question."""
        return view(ctx, _require(ctx, org), load_task(ctx))
