"""A site's consent policy: which rounds it joins (leader, modality asked of it) and how many rows it sends; kept
in the site's folder, with a clear error for a file that is not a policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmfuse.chaincode.contracts.records import Round
from swarmfuse.client.site.policy import POLICY_FILE, PolicyError, SitePolicy, load_policy, save_policy

AT = "2026-01-01T00:00:00Z"
ROUND = Round.model_validate({
    "round_id": "r1", "state": "open", "leader": "DC1MSP", "participants": ["DC1MSP", "DC2MSP", "DC3MSP"],
    "roles": {"DC1MSP": ["label"], "DC2MSP": ["text"], "DC3MSP": ["image"]}, "label_holder": "DC1MSP",
    "method": "intermediate", "model_spec_sha256": "0" * 64, "deadline": AT, "opened_by": "DC1MSP", "opened_at": AT,
    "open_tx": "tx", "turn": 0, "updated_at": AT})


def test_no_policy_consents_to_every_round() -> None:
    assert SitePolicy().refusal(ROUND, "DC2MSP") is None
    assert SitePolicy().too_many_rows(10**9) is None


def test_the_leader_and_the_modality_asked_decide() -> None:
    picky = SitePolicy(leaders=["DC3MSP"], modalities=["text"])
    assert "leader DC1MSP is not one this site lets lead (DC3MSP)" in (picky.refusal(ROUND, "DC2MSP") or "")
    assert picky.refusal(ROUND.model_copy(update={"leader": "DC3MSP"}), "DC2MSP") is None
    assert picky.refusal(ROUND, "DC1MSP") is not None  # DC1 leads, but is asked for labels it does not offer
    assert SitePolicy(leaders=[]).refusal(ROUND, "DC1MSP") is None  # a site may always lead itself
    offers = SitePolicy(modalities=["label"]).refusal(ROUND, "DC2MSP")
    assert offers == "the round asks for text; this site offers label"


def test_a_row_limit_bounds_what_is_sent() -> None:
    limited = SitePolicy(max_rows=100)
    assert limited.too_many_rows(100) is None
    assert limited.too_many_rows(101) == "101 aligned entities exceed this site's limit of 100 a round"
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        SitePolicy(max_rows=0)


def test_a_split_epoch_limit_refuses_longer_split_learning() -> None:
    split = ROUND.model_copy(update={"split_epochs": 8})
    assert SitePolicy().refusal(split, "DC1MSP") is None
    assert SitePolicy(max_split_epochs=8).refusal(split, "DC1MSP") is None
    assert SitePolicy(max_split_epochs=4).refusal(split, "DC1MSP") == \
        "the round asks for 8 split-learning epochs; this site takes part in at most 4"
    assert SitePolicy(max_split_epochs=0).refusal(split, "DC2MSP") is not None  # no split learning at all
    assert SitePolicy(max_split_epochs=0).refusal(ROUND, "DC2MSP") is None  # rounds without it are unaffected
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SitePolicy(max_split_epochs=-1)


def test_the_policy_command_sets_and_clears_the_split_epoch_limit(tmp_path: Path) -> None:
    from cli_runner import run_cli

    site = ["--org", "DC1", "--task", "t", "--home", str(tmp_path)]
    code, shown = run_cli("site", "policy", "--max-split-epochs", "0", *site)
    shown = " ".join(shown.split())  # the console wraps lines
    assert code == 0 and "with no split learning" in shown, shown
    assert load_policy(tmp_path / "sites" / "DC1").max_split_epochs == 0
    code, shown = run_cli("site", "policy", "--any-split-epochs", *site)
    shown = " ".join(shown.split())
    assert code == 0 and "any number of split-learning epochs" in shown, shown
    code, shown = run_cli("site", "policy", "--max-split-epochs", "3", "--any-split-epochs", *site)
    assert code != 0 and "not both" in shown


def test_the_policy_lives_in_the_site_folder(tmp_path: Path) -> None:
    assert load_policy(tmp_path) == SitePolicy()
    saved = SitePolicy(leaders=["DC2MSP", "DC1MSP", "DC1MSP"], max_rows=5)
    path = save_policy(tmp_path, saved)
    assert path == tmp_path / POLICY_FILE and path.stat().st_mode & 0o077 == 0
    assert load_policy(tmp_path) == saved and load_policy(tmp_path).leaders == ["DC1MSP", "DC2MSP"]
    path.write_text('{"leaders": ["DC1MSP"], "max_row": 3}')
    with pytest.raises(PolicyError, match=f"(?s){POLICY_FILE} is not a site policy.*max_row"):
        load_policy(tmp_path)
