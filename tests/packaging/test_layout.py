"""The distribution maps ``swarmfuse.<concern>`` onto the concern folders, and nothing else."""

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli_process

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from setup import ROOTS, _packages

sys.path.pop(0)


def test_every_folder_package_is_importable_under_swarmfuse():
    for name in _packages():
        module = importlib.import_module(name)
        folder = ROOT / ROOTS[next(r for r in sorted(ROOTS, key=len, reverse=True) if name == r or name.startswith(r + "."))]
        assert Path(module.__file__).resolve().is_relative_to(folder), name


@pytest.mark.parametrize("bare", ["client", "network", "chaincode", "extractors"])
def test_no_ambiguous_top_level_import(bare):
    # Run outside the repository so the working directory cannot make a folder importable.
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({bare!r}) is not None)"
    assert subprocess.run([sys.executable, "-c", code], cwd="/", check=False).returncode == 0


def test_console_script_lists_the_concerns():
    out = run_cli_process("--help", cwd="/")
    assert out.returncode == 0, out.stderr
    assert "Multimodal data fusion" in out.stdout
