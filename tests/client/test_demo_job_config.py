"""The main job's settings: the seed reaches the agreement's reward seeds (the round's head is trained with it),
the regime follows the extractors and split epochs, and bad settings are refused with the reason."""

from pathlib import Path

import pytest

from swarmfuse.client.demo.job import REFERENCE_EXTRACTORS, TERMS, JobConfig, JobFailed, main, terms_for


def config(**changes: object) -> JobConfig:
    return JobConfig(out=Path("out"), home=Path("home"), **changes)  # type: ignore[arg-type]


def test_the_seed_is_the_agreed_reward_seed() -> None:
    terms = terms_for(config(seed=2))
    assert terms["reward"]["seeds"] == [2]
    assert TERMS["reward"]["seeds"] == [0], "the shared default terms are not changed"
    assert terms["extractors"] == TERMS["extractors"]


def test_reference_extractors_are_named_in_the_terms() -> None:
    terms = terms_for(config(extractors="reference", seed=1))
    assert terms["extractors"] == REFERENCE_EXTRACTORS and terms["reward"]["seeds"] == [1]


@pytest.mark.parametrize(("changes", "regime"), [({}, "b"), ({"split_epochs": 0}, "a"),
                                                 ({"extractors": "reference"}, "c")])
def test_the_round_regime(changes: dict[str, object], regime: str) -> None:
    assert config(**changes).round_regime == regime


@pytest.mark.parametrize(("changes", "reason"), [({"seed": -1}, "seed must be 0 or more"),
                                                 ({"split_epochs": 51}, "split epochs must be between"),
                                                 ({"extractors": "central"}, "extractors must be one of")])
def test_bad_settings_are_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(JobFailed, match=reason):
        config(**changes)


def test_the_command_line_refuses_a_negative_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "out"), "--home", str(tmp_path / "home"), "--seed", "-1"]) == 1
    assert "seed must be 0 or more" in capsys.readouterr().err
