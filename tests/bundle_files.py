"""A minimal org bundle written by hand (settings, one identity file, the manifest of both), laid out as
``swarmfuse network bundle`` lays one out: for the tests of commands that refuse a bundle before they connect."""

from __future__ import annotations

import hashlib
from pathlib import Path

from swarmfuse.network.bundle import BundleManifest, BundleOrg, SiteSettings

IDENTITY = "identities/user/cert.pem"


def minimal_bundle(folder: Path, org: str, task: str) -> Path:
    """``folder`` holding ``org``'s bundle for ``task`` (no real keys: nothing connects with it)."""
    (folder / "identities" / "user").mkdir(parents=True)
    (folder / IDENTITY).write_text("a certificate\n")
    settings = SiteSettings(org=org, mspid=f"{org}MSP", task=task, engine="embedded", site_address="10.87.0.30",
                            site_port=17024, orgs=[BundleOrg(name=org, mspid=f"{org}MSP",
                                                             tls_ca=f"tls/orgs/{org}MSP.pem", peer="10.87.0.1:17020")])
    (folder / "site.json").write_text(settings.model_dump_json())
    files = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("site.json", IDENTITY)}
    (folder / "bundle.json").write_text(BundleManifest(org=org, files=files).model_dump_json())
    return folder
