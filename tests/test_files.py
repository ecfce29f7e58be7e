"""Private files: written whole or not at all, readable by their owner alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmfuse.files import make_private, write_atomic


def test_an_atomic_write_is_private_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two" and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_files_a_library_wrote_are_made_private_in_a_folder_only_the_owner_reaches(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    (scratch / "sub").mkdir(parents=True)
    scratch.chmod(0o700)
    for name in ("model.onnx", "sub/vocab.json"):
        (scratch / name).write_bytes(b"x")
        (scratch / name).chmod(0o644)
    make_private(scratch)
    assert {p.relative_to(scratch).as_posix(): p.stat().st_mode & 0o777 for p in scratch.rglob("*") if p.is_file()} \
        == {"model.onnx": 0o600, "sub/vocab.json": 0o600}
    scratch.chmod(0o755)
    with pytest.raises(PermissionError, match="reachable by others"):
        make_private(scratch)
    assert os.stat(scratch / "model.onnx").st_mode & 0o777 == 0o600
