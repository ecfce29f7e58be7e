"""``audit verify``'s privacy check: the ε of every DP release and budget, recomputed from the recorded parameters.

From the replayed state: each agreement's DP terms (its ``budget_sigma`` is the noise multiplier of
``budget_epsilon`` at ``delta``); each recorded release (its ε is the accountant's for its σ and δ); each
site's budget per data set (Σ 1/σ² over the distinct releases of that data set the exchanges record, and the ε
that spending amounts to). The accountant is the one the sites use (``dp-accounting``); without it the check
is skipped, saying so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from swarmfuse.chaincode.contracts import keys
from swarmfuse.chaincode.contracts.records import AgreementProposal, Exchange, PrivacyBudget
from swarmfuse.client.audit.report import Category, Check, Status
from swarmfuse.client.privacy import accountant

NAME = "privacy"
M = TypeVar("M", bound=BaseModel)
TOLERANCE = 1e-6
"""Relative difference allowed between a recorded ε and the recomputed one (the record keeps 9 decimals)."""


def _check(subject: str, problems: list[str], detail: str, tx_id: str | None = None) -> Check:
    return Check(category=Category.STATE, name=NAME, subject=subject, status=Status.FAIL if problems else Status.PASS,
                 detail="; ".join(problems) if problems else detail, tx_id=tx_id)


def privacy_checks(state: Mapping[str, bytes]) -> list[Check]:
    """One check per agreement with DP terms, per DP release, and per privacy budget."""
    unreadable: list[Check] = []

    def records(object_type: str, model: type[M], wanted: Callable[[Any], bool] = lambda _: True) -> list[M]:
        found = []
        for attributes, raw in sorted(keys.of_type(state, object_type).items()):
            try:
                document = json.loads(raw)
                if isinstance(document, dict) and wanted(document):
                    found.append(model.model_validate(document))
            except (ValueError, ValidationError) as exc:
                unreadable.append(Check(category=Category.STATE, name=NAME, subject=f"{object_type} {'/'.join(attributes)}",
                                        status=Status.FAIL, detail=f"the record cannot be read: {exc}"))
        return found

    proposals = records(keys.AGREEMENT_PROPOSAL, AgreementProposal, lambda d: d.get("privacy") is not None)
    exchanges = records(keys.EXCHANGE, Exchange, lambda d: d.get("privacy") is not None)
    releases = [(e, e.privacy) for e in exchanges if e.privacy is not None]
    budgets = records(keys.BUDGET, PrivacyBudget)
    if not (releases or budgets or proposals):
        return unreadable
    try:
        accountant.name()
    except accountant.AccountantMissing as exc:  # an optional dependency of the auditor
        return [*unreadable, Check(category=Category.STATE, name=NAME, subject="DP releases", status=Status.SKIP,
                                   detail=str(exc))]
    checks = unreadable
    for proposal in sorted(proposals, key=lambda p: p.proposed_at):
        terms = proposal.privacy
        if terms is None:
            continue
        expected = accountant.noise_multiplier(float(terms.budget_epsilon), float(terms.delta))
        problems = [] if Fraction(expected) == Fraction(terms.budget_sigma) else [
            (f"budget_sigma {terms.budget_sigma} is not the noise multiplier of epsilon {terms.budget_epsilon} at "
            f"delta {terms.delta} ({expected})")]
        checks.append(_check(f"agreement {proposal.agreement_sha256[:16]}", problems,
                             f"budget epsilon {terms.budget_epsilon} at delta {terms.delta} is sigma {expected}",
                             proposal.tx_id))
    for e, made in sorted(releases, key=lambda pair: (pair[0].round_id, pair[0].sender, pair[0].kind)):
        epsilon = accountant.epsilon_of(float(made.noise_multiplier), float(made.delta))
        problems = [] if math.isclose(epsilon, float(made.epsilon), rel_tol=TOLERANCE) else [
            f"recorded epsilon {made.epsilon}, the accountant gives {epsilon:.9f} for sigma {made.noise_multiplier}"]
        checks.append(_check(f"release {e.round_id} {e.sender}->{e.receiver} {e.kind}", problems,
                             f"epsilon {epsilon:.6f} at delta {made.delta} (sigma {made.noise_multiplier}, clip "
                             f"{made.clip}, {made.projection_dim} dimensions)", e.tx_id))
    for budget in sorted(budgets, key=lambda b: (b.org, b.dataset_sha256)):
        mine = [(e, made) for e, made in releases if e.sender == budget.org and made.dataset_sha256 == budget.dataset_sha256]
        sigmas = {e.sha256: Fraction(made.noise_multiplier) for e, made in mine}
        spent = sum((1 / s ** 2 for s in sigmas.values()), Fraction(0))
        problems = []
        if spent != Fraction(budget.mu_squared) or sorted(sigmas) != sorted(budget.releases):
            problems.append(f"the budget records sum(1/sigma^2) = {budget.mu_squared} over {len(budget.releases)} "
                            f"releases; its recorded releases give {spent} over {len(sigmas)}")
        delta = min((float(made.delta) for _, made in mine), default=1e-5)
        composed = accountant.epsilon_of(float(1 / math.sqrt(spent)), delta) if spent > 0 else 0.0
        checks.append(_check(f"budget {budget.org} {budget.dataset_sha256[:16]}", problems,
                             f"{len(sigmas)} release(s) spend epsilon {composed:.6f} at delta {delta:g}",
                             budget.tx_id))
    return checks

