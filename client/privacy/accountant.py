"""The privacy accountant: Google's ``dp-accounting`` for the Gaussian mechanism (its analytic calibration,
https://arxiv.org/abs/1805.06530), used by the sites to calibrate their releases and by the auditor to check them.

Gaussian releases of sensitivity 1 with noise multipliers σᵢ compose to one Gaussian mechanism with
1/σ² = Σ 1/σᵢ² (Gaussian differential privacy), so a budget is a noise multiplier too and spending is exact
rational arithmetic on the ledger.
"""

from __future__ import annotations

from decimal import Decimal
from importlib.metadata import version
from typing import Any

from swarmfuse.errors import SwarmfuseError

NAME = "dp-accounting {} analytic Gaussian"


class AccountantMissing(SwarmfuseError, ImportError):
    """dp-accounting is not installed (it comes with the ``privacy`` extra)."""


def _gaussian() -> Any:
    try:
        from dp_accounting import gaussian_mechanism
    except ImportError as exc:
        raise AccountantMissing("differential privacy needs Google's dp-accounting: "
                                "pip install 'swarmfuse[privacy]'") from exc
    return gaussian_mechanism


def name() -> str:
    """The accountant as a release records it, with its version."""
    _gaussian()
    return NAME.format(version("dp-accounting"))


def noise_multiplier(epsilon: float, delta: float) -> str:
    """The least σ whose Gaussian mechanism (sensitivity 1) is (ε, δ)-DP, as decimal text rounded up to 12 places
    (a little more noise, never less). An agreement's ``budget_sigma`` and a release's σ both come from here, so
    a release at the whole budget spends exactly the budget."""
    sigma = Decimal(repr(float(_gaussian().get_sigma_gaussian(epsilon, delta))))
    return str(sigma.quantize(Decimal("1e-12"), "ROUND_CEILING"))


def epsilon_of(sigma: float, delta: float) -> float:
    """The ε at ``delta`` of a Gaussian mechanism with noise multiplier σ (or of releases composed to it)."""
    return float(_gaussian().get_epsilon_gaussian(sigma, delta))
