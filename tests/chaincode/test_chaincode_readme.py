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


def test_the_majorities_table_is_what_the_contracts_count() -> None:
    from swarmfuse.chaincode.contracts.consortium import abort_threshold, admission_threshold, suspension_threshold

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Majorities") : text.index("## Key schema")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(row.split("|")[1]) for row in rows] == list(range(1, 9))
    for row in rows:
        counted, admit, suspend, abort = (cell.strip() for cell in row.split("|")[1:5])
        n = int(counted)
        assert int(admit) == admission_threshold(n), row
        assert suspend == ("impossible" if suspension_threshold(n) is None else str(suspension_threshold(n))), row
        assert int(abort) == abort_threshold(n), row
