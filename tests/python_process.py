"""Python code run in a fresh interpreter outside the repository, with chosen top-level packages unimportable:
what an install without them (fewer extras) sees."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable

_BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, Block())
""")


def run_python(code: str, blocked: Iterable[str] = (), timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``code`` (dedented) run by this interpreter in ``/`` with no ``PYTHONPATH``, so only installed packages
    import, and none of ``blocked``: the finished process, stdout and stderr captured as text."""
    blocked = tuple(blocked)
    prelude = _BLOCKER.format(blocked=blocked) if blocked else ""
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd="/", env={**os.environ, "PYTHONPATH": ""}, timeout=timeout, check=False)
