"""Locate the pinned Fabric release: ``bin/`` with the commands and ``config/`` with the default configs.

Looked up in ``SWARMFUSE_FABRIC_HOME`` when set, else in ``<cache>/fabric/<FABRIC_COMMIT>`` where
``<cache>`` is ``SWARMFUSE_CACHE`` or ``~/.cache/swarmfuse`` (the folder ``scripts/setup.sh`` fills).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from swarmfuse.network.errors import FabricUnavailable

FABRIC_ENV = Path(__file__).with_name("fabric.env")
COMMANDS = ("peer", "orderer", "osnadmin", "configtxgen", "cryptogen")
CONFIGS = ("core.yaml", "orderer.yaml")


def pinned() -> dict[str, str]:
    """The ``KEY=value`` pairs of ``fabric.env`` (quotes stripped)."""
    values: dict[str, str] = {}
    for line in FABRIC_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip('"')
    return values


def default_home(env: dict[str, str] | None = None) -> Path:
    """Where the Fabric release is expected when ``SWARMFUSE_FABRIC_HOME`` is not set."""
    env = dict(os.environ) if env is None else env
    cache = Path(env.get("SWARMFUSE_CACHE") or Path.home() / ".cache" / "swarmfuse")
    return cache / "fabric" / pinned()["FABRIC_COMMIT"]


@dataclass(frozen=True)
class Fabric:
    """A located Fabric release."""

    home: Path

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    def bin(self, command: str) -> str:
        return str(self.home / "bin" / command)


def locate(env: dict[str, str] | None = None) -> Fabric:
    """The Fabric release to use, or :class:`FabricUnavailable` naming every missing piece."""
    env = dict(os.environ) if env is None else env
    explicit = env.get("SWARMFUSE_FABRIC_HOME")
    home = Path(explicit) if explicit else default_home(env)
    source = "SWARMFUSE_FABRIC_HOME" if explicit else "the swarmfuse cache (run scripts/setup.sh)"
    missing = [f"bin/{name}" for name in COMMANDS if not os.access(home / "bin" / name, os.X_OK)]
    missing += [f"config/{name}" for name in CONFIGS if not (home / "config" / name).is_file()]
    if missing:
        raise FabricUnavailable(f"Fabric {pinned()['FABRIC_VERSION']} not found in {home} (from {source}): missing {', '.join(missing)}")
    return Fabric(home=home)
