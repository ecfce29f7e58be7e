"""``swarmfuse site agreement propose``: the terms file checked before anything is sent, a privacy budget's sigma
computed by the accountant when the file leaves it out, and bad files named."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cli_runner import invoke_cli
from click.testing import Result

from swarmfuse.chaincode.contracts.records import AgreementProposal
from swarmfuse.client.privacy.accountant import noise_multiplier
from swarmfuse.client.site import wiring

SHA = hashlib.sha256(b"x").hexdigest()
TERMS = {"model_spec_sha256": SHA, "fusion_method": "intermediate", "extractors": {"text": "site"},
         "purpose": "a test", "exchange_kinds": ["features", "labels"], "retention_days": 7,
         "reward": {"method": "shapley", "metric": "test_accuracy", "units_per_round": 10,
                    "label_holder_share_percent": 10},
         "privacy": {"mechanism": "gaussian", "kinds": ["features"], "delta": "0.00001", "release_epsilon": "4",
                     "budget_epsilon": "8", "clip": "1", "projection_dim": 32},
         "legal_text_sha256": SHA}


@pytest.fixture
def proposed(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def propose(terms: dict[str, Any]) -> AgreementProposal:
        sent.append(terms)
        return AgreementProposal.model_validate({**terms, "agreement_sha256": SHA, "status": "pending",
                                                 "proposed_by": "DC1MSP", "proposed_at": "2026-01-01T00:00:00Z",
                                                 "confirmed_by": ["DC1MSP"], "awaiting": ["DC2MSP"], "tx_id": "tx"})

    @contextmanager
    def open_site(home: Path, org: str, task: str) -> Iterator[Any]:
        yield SimpleNamespace(ledger=SimpleNamespace(propose_agreement=propose))

    monkeypatch.setattr(wiring, "open_site", open_site)
    return sent


def invoke(path: Path) -> Result:
    return invoke_cli("site", "agreement", "propose", str(path), "--org", "DC1", "--task", "t",
                      "--home", str(path.parent))


def test_a_privacy_budgets_sigma_is_computed_when_left_out(proposed: list[dict[str, Any]], tmp_path: Path) -> None:
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps(TERMS))
    result = invoke(terms)
    assert result.exit_code == 0, result.output
    assert f"proposed {SHA}; awaiting DC2MSP" in " ".join(result.output.split())
    assert proposed[0]["privacy"]["budget_sigma"] == noise_multiplier(8.0, 1e-5)


def test_bad_terms_are_named_and_nothing_is_sent(proposed: list[dict[str, Any]], tmp_path: Path) -> None:
    for name, text in (("not-json.json", "{"), ("no-reward.json", json.dumps({**TERMS, "reward": None})),
                       ("bad-privacy.json", json.dumps({**TERMS, "privacy": {**TERMS["privacy"], "delta": "2"}}))):
        terms = tmp_path / name
        terms.write_text(text)
        result = invoke(terms)
        assert result.exit_code == 1 and name in result.output, result.output
    result = invoke(tmp_path / "missing.json")
    assert result.exit_code == 1 and "missing.json" in result.output
    assert proposed == []
