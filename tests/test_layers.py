"""The direction of the layers: Fabric's protocol (``network/protocol``) under the Gateway client, the embedded
engine and the auditor; the engine never importing the client, the client's Gateway and the auditor never
importing the engine; the typed task-ledger client (``client/ledger``), the privacy tools (``client/privacy``) and
the swarm merges (``client/swarm``) under the site and the auditor, the auditor never importing the site, and
neither the demo (``client/demo``); the extractors (``extractors``) under all of them, importing no client, ledger
or chaincode. Every import counts, function-local ones too."""

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
    "client/gateway": ("swarmfuse.network.embedded", "swarmfuse.client.site", "swarmfuse.client.audit",
                       "swarmfuse.client.ledger"),
    "client/ledger": ("swarmfuse.network.embedded", "swarmfuse.client.site", "swarmfuse.client.audit",
                      "swarmfuse.client.demo"),
    "client/site": ("swarmfuse.client.audit", "swarmfuse.client.demo"),
    "client/privacy": ("swarmfuse.network", "swarmfuse.client.site", "swarmfuse.client.audit",
                       "swarmfuse.client.ledger"),
    "client/swarm": ("swarmfuse.network", "swarmfuse.client.site", "swarmfuse.client.audit",
                     "swarmfuse.client.ledger", "swarmfuse.client.demo", "swarmfuse.extractors"),
    "client/audit": ("swarmfuse.network.embedded", "swarmfuse.client.site", "swarmfuse.client.demo"),
    "extractors": ("swarmfuse.client", "swarmfuse.network", "swarmfuse.chaincode"),
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


BUILTIN_ERRORS = {"Exception", "ValueError", "RuntimeError", "KeyError", "LookupError", "OSError", "TypeError"}
FINGERPRINTED = {"extractors/image/backbone.py", "extractors/image/preprocess.py"}
"""Modules in the image extractor's training-code fingerprint: changing their code retrains the extractor (and
moves the accuracy figures), so their errors join the root with the next change of the image recipe."""


def test_every_error_the_package_defines_descends_from_swarmfuse_error() -> None:
    """A public class that subclasses a built-in exception directly also names SwarmfuseError, so that one
    ``except`` catches every failure swarmfuse reports on purpose (the other error classes derive from these;
    private ones are control flow inside one module)."""
    roots = []
    for folder in ("chaincode", "client", "network", "extractors", "swarmfuse"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if not isinstance(node, ast.ClassDef):
                    continue
                bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
                if (bases & BUILTIN_ERRORS and "SwarmfuseError" not in bases and node.name != "SwarmfuseError"
                        and not node.name.startswith("_") and str(path.relative_to(ROOT)) not in FINGERPRINTED):
                    roots.append(f"{path.relative_to(ROOT)}: {node.name}({', '.join(sorted(bases))})")
    assert not roots, "\n".join(roots)
