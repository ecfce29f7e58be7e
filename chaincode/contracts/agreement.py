"""``Agreement``: the collaboration's terms, signed by every founder, and in force for every round after.

A founder proposes a spec (``Agreement:Propose``, its own confirmation); each other founder confirms the same
hash (``Agreement:Confirm``, each confirmation the founder's own key under its own key-level policy); the last
confirmation puts the spec in force. An amendment is a new proposal down the same path: it replaces the terms
for rounds opened from then on, never a past round's (each round records the agreement it was opened under).
While an agreement is in force, ``Rounds:Open`` refuses a round that does not name it or whose model or fusion
method differ from it, and ``Rounds:RecordExchange`` refuses an exchange kind its terms do not allow.
"""

from __future__ import annotations

from swarmfuse.chaincode.contract import Conflict, Context, Forbidden, NotFound, transaction
from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.consortium import (
    MEMBER,
    READERS,
    ConsortiumContract,
    load_task,
    record_confirmation,
)
from swarmfuse.chaincode.contracts.fields import PageSize, Sha256
from swarmfuse.chaincode.contracts.records import (
    Agreement as AgreementRecord,
)
from swarmfuse.chaincode.contracts.records import (
    AgreementHistory,
    AgreementProposal,
    AgreementSpec,
    ProposalStatus,
)

FOUNDERS_ONLY = "Forbidden: caller is not a founder of the task"


def load_agreement(ctx: Context) -> AgreementRecord | None:
    """The agreement in force, ``None`` while the founders have agreed none."""
    return ctx.get(keys.agreement_key(), AgreementRecord)


def _founder(ctx: Context) -> tuple[str, list[str]]:
    founders = list(load_task(ctx).founders)
    org = ctx.client.mspid
    if org not in founders:
        raise Forbidden(f"{org} is not a founder of the task ({', '.join(founders)}): only founders sign its terms")
    return org, founders


def _confirm(ctx: Context, proposal: AgreementProposal, org: str, founders: list[str]) -> AgreementProposal:
    """Record ``org``'s own confirmation; the last founder's puts the agreement in force."""
    digest = proposal.agreement_sha256
    record_confirmation(ctx, keys.agreement_confirmation_key(digest, org), digest, org, founders)
    proposal = proposal.confirmed(org, founders)
    ctx.put(keys.agreement_proposal_key(digest), proposal)
    if proposal.status is ProposalStatus.ACTIVE:
        previous = load_agreement(ctx)
        spec = AgreementSpec.model_validate(proposal.model_dump(include=set(AgreementSpec.model_fields)))
        ctx.put(keys.agreement_key(), AgreementRecord(
            **spec.model_dump(), agreement_sha256=digest, version=1 if previous is None else previous.version + 1,
            confirmed_by=proposal.confirmed_by, activated_at=ctx.now, tx_id=ctx.tx_id))
    ctx.emit({"agreement_sha256": digest, "by": org, "awaiting": proposal.awaiting, "status": proposal.status.value})
    return proposal


class Agreement(ConsortiumContract):
    """Propose, confirm and read the collaboration's terms."""

    @transaction(
        allow=(MEMBER,),
        event="AgreementProposed",
        max_bytes=16384,
        errors=(FOUNDERS_ONLY, "BadRequest: malformed spec",
                "Conflict: this spec is proposed already, or is the agreement in force"),
    )
    def propose(self, ctx: Context, terms: AgreementSpec) -> AgreementProposal:
        """A founder proposes terms (or an amendment); in force once every founder confirmed the same hash."""
        org, founders = _founder(ctx)
        digest = terms.sha256()
        current = load_agreement(ctx)
        if current is not None and current.agreement_sha256 == digest:
            raise Conflict(f"agreement {digest} is already in force")
        if ctx.read(keys.agreement_proposal_key(digest)) is not None:
            raise Conflict(f"agreement {digest} is proposed already; confirm it with Agreement:Confirm")
        proposal = AgreementProposal(**terms.model_dump(), agreement_sha256=digest, status=ProposalStatus.PENDING,
                                     proposed_by=org, proposed_at=ctx.now, confirmed_by=[], awaiting=founders,
                                     tx_id=ctx.tx_id)
        return _confirm(ctx, proposal, org, founders)

    @transaction(
        allow=(MEMBER,),
        event="AgreementConfirmed",
        errors=(FOUNDERS_ONLY, "BadRequest: malformed hash", "NotFound: no proposal with this hash",
                "Conflict: caller already confirmed, or the proposal is no longer pending"),
    )
    def confirm(self, ctx: Context, agreement_sha256: Sha256) -> AgreementProposal:
        """A founder confirms proposed terms by their hash; the last confirmation puts them in force."""
        org, founders = _founder(ctx)
        proposal = ctx.get(keys.agreement_proposal_key(agreement_sha256), AgreementProposal)
        if proposal is None:
            raise NotFound(f"no agreement with SHA-256 {agreement_sha256} was proposed")
        if proposal.status is not ProposalStatus.PENDING:
            raise Conflict(f"agreement {agreement_sha256} is {proposal.status.value}, not pending")
        if org in proposal.confirmed_by:
            raise Conflict(f"{org} has already confirmed agreement {agreement_sha256}")
        return _confirm(ctx, proposal, org, founders)

    @transaction(evaluate=True, allow=READERS,
                 errors=("Forbidden: caller is not registered nor an auditor", "NotFound: no agreement in force"))
    def get(self, ctx: Context) -> AgreementRecord:
        """The agreement in force."""
        agreement = load_agreement(ctx)
        if agreement is None:
            raise NotFound("the founders have agreed no terms yet (Agreement:Propose, then Agreement:Confirm)")
        return agreement

    @transaction(evaluate=True, allow=READERS,
                 errors=("Forbidden: caller is not registered nor an auditor", "BadRequest: malformed hash",
                         "NotFound: no proposal with this hash"))
    def proposal(self, ctx: Context, agreement_sha256: Sha256) -> AgreementProposal:
        """Proposed terms and who confirmed them so far."""
        proposal = ctx.get(keys.agreement_proposal_key(agreement_sha256), AgreementProposal)
        if proposal is None:
            raise NotFound(f"no agreement with SHA-256 {agreement_sha256} was proposed")
        return proposal

    @transaction(evaluate=True, allow=READERS, errors=("Forbidden: caller is not registered nor an auditor",))
    def history(self, ctx: Context, page_size: PageSize) -> AgreementHistory:
        """The agreements that were in force, oldest first: the newest ``page_size`` of them."""
        found = [AgreementRecord.model_validate_json(m.value) for m in ctx.stub.get_history_for_key(keys.agreement_key())
                 if not m.is_delete]
        return AgreementHistory(items=found[-page_size:])
