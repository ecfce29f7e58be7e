"""The committed ``chaincode/README.md`` reference is exactly what the contract metadata generates."""

from __future__ import annotations

from pathlib import Path

from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.contract import docs

README = Path(__file__).resolve().parents[2] / "chaincode" / "README.md"


def test_committed_readme_matches_generated_reference() -> None:
    current = README.read_text(encoding="utf-8")
    assert current == docs.splice(current, docs.render(create_chaincode())), (
        "run python -m swarmfuse.chaincode.contract.docs"
    )


def test_every_transaction_and_event_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    for _, transactions in create_chaincode().contracts:
        for tx in transactions.values():
            assert f"#### `{tx.full_name}`" in text
            if tx.spec.event:
                assert f"- event: `{tx.spec.event}`" in text


def test_check_mode_reports_a_stale_readme(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{docs.BEGIN}\nold\n{docs.END}\n", encoding="utf-8")
    assert docs.main(["--check", "--readme", str(stale)]) == 1
    assert docs.main(["--readme", str(stale)]) == 0
    assert docs.main(["--check", "--readme", str(stale)]) == 0
    assert "#### `Rounds:Open`" in stale.read_text(encoding="utf-8")
    missing = tmp_path / "none.md"
    missing.write_text("no markers", encoding="utf-8")
    assert docs.main(["--check", "--readme", str(missing)]) == 2
