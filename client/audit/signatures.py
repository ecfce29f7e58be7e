"""``audit verify``'s check of the founders' confirmations behind the task and every agreement.

The task record and the agreement in force are shared keys: a colluding majority of endorsers can write them
without any founder's consent. What it cannot write without failing ``authorship`` is a founder's own
confirmation key. So, from the replayed state: every founder the task names has its own confirmation of the
task's configuration hash; every founder an agreement proposal counts as confirmed has its own confirmation of
that agreement's hash; and the agreement in force is a proposal every founder confirmed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel, ValidationError

from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import Agreement, AgreementProposal, Confirmation, TaskRecord
from swarmfuse.client.audit.report import Category, Check, Status

NAME = "founders' confirmations"


def _missing(state: Mapping[str, bytes], key_of: Callable[[str, str], str], digest: str, orgs: list[str]) -> list[str]:
    """The orgs of ``orgs`` without their own confirmation of ``digest`` (``key_of(digest, org)``: its key)."""
    missing = []
    for org in orgs:
        raw = state.get(key_of(digest, org))
        found = Confirmation.model_validate_json(raw) if raw is not None else None
        if found is None or (found.sha256, found.org) != (digest, org):
            missing.append(org)
    return missing


def _check(subject: str, missing: list[str], what: str, record: BaseModel) -> Check:
    tx_id = getattr(record, "tx_id", None)
    if missing:
        return Check(category=Category.STATE, name=NAME, subject=subject, status=Status.FAIL, tx_id=tx_id,
                     detail=f"{', '.join(missing)} never confirmed {what} with a key of its own")
    return Check(category=Category.STATE, name=NAME, subject=subject, status=Status.PASS, tx_id=tx_id,
                 detail=f"every founder it names confirmed {what} with a key of its own")


def confirmation_checks(state: Mapping[str, bytes]) -> list[Check]:
    """One check for the task, one per agreement proposal some founder confirmed, one for the agreement in force."""
    checks: list[Check] = []
    raw_task = state.get(keys.task_key())
    if raw_task is None:
        return checks
    try:
        task = TaskRecord.model_validate_json(raw_task)
        missing = _missing(state, keys.confirmation_key, task.config_sha256, sorted({*task.founders, *task.confirmed_by}))
        checks.append(_check(f"task {task.task}", missing, f"configuration {task.config_sha256}", task))
        proposals = {digest: AgreementProposal.model_validate_json(raw)
                     for (digest,), raw in keys.of_type(state, keys.AGREEMENT_PROPOSAL).items()}
        for digest, proposal in sorted(proposals.items()):
            missing = _missing(state, keys.agreement_confirmation_key, digest, proposal.confirmed_by)
            checks.append(_check(f"agreement proposal {digest[:16]}", missing, f"agreement {digest}", proposal))
        raw_active = state.get(keys.agreement_key())
        if raw_active is not None:
            active = Agreement.model_validate_json(raw_active)
            missing = _missing(state, keys.agreement_confirmation_key, active.agreement_sha256,
                               sorted({*task.founders, *active.confirmed_by}))
            checks.append(_check(f"agreement in force (version {active.version})", missing,
                                 f"agreement {active.agreement_sha256}", active))
    except ValidationError as exc:
        checks.append(Check(category=Category.STATE, name=NAME, subject="task and agreements", status=Status.FAIL,
                            detail=f"a record cannot be read: {exc.errors(include_url=False)[0]['msg']}"))
    return checks
