"""The benchmark drivers under ``scripts/bench/<topic>/``, imported for the tests of their fast parts.

The drivers are scripts, not modules of the ``swarmfuse`` package: ``scripts/bench_*.sh`` runs each one by its
path. A test loads one the same way, by path, under a name of its own (``bench_<topic>_<name>``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench"


def bench_module(topic: str, name: str = "bench") -> ModuleType:
    """``scripts/bench/<topic>/<name>.py`` as a module (loaded once per test session)."""
    module_name = f"bench_{topic}_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCH / topic / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no bench driver {topic}/{name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
