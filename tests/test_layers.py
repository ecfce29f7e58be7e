"""The direction of the layers: Fabric's protocol (``network/protocol``) under the Gateway client, the embedded
engine and the auditor; the engine never importing the client, the client's Gateway and the auditor never
importing the engine. Every import counts, function-local ones too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RULES = {
    # folder: swarmfuse packages its modules may not import
    "network/protocol": ("swarmfuse.client", "swarmfuse.chaincode", "swarmfuse.extractors",
                         "swarmfuse.network.embedded", "swarmfuse.network.cli", "swarmfuse.network.tasks"),
    "network/embedded": ("swarmfuse.client",),
    "client/gateway": ("swarmfuse.network.embedded", "swarmfuse.client.site", "swarmfuse.client.audit"),
    "client/audit": ("swarmfuse.network.embedded",),
}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


@pytest.mark.parametrize("folder", sorted(RULES))
def test_a_layer_imports_nothing_above_it(folder: str) -> None:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"{folder} holds no module"
    broken = sorted(f"{path.relative_to(ROOT)} imports {module}" for path in files for module in imported_modules(path)
                    if any(module == banned or module.startswith(banned + ".") for banned in RULES[folder]))
    assert not broken, "\n".join(broken)
