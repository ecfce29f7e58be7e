"""Wiring of one site: its store, Gateway connection, TLS, data holdings, agent and HTTPS service."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from swarmfuse.chaincode.contracts.records import Summary
from swarmfuse.client.gateway import Gateway
from swarmfuse.client.ledger import TaskLedger
from swarmfuse.client.site.agent import LABELS, Holding, SiteAgent
from swarmfuse.client.site.link import HttpPeerLink
from swarmfuse.client.site.manifest import load_manifest
from swarmfuse.client.site.site import Site, SiteError
from swarmfuse.client.site.source import BundleSource
from swarmfuse.client.site.store import Store
from swarmfuse.client.site.tls import OrgResolver, SiteTls, issue_site_tls, site_tls
from swarmfuse.network.bundle import describe, open_bundle
from swarmfuse.network.procs import check_ports_free

logger = logging.getLogger(__name__)

MODALITIES = ("text", "image", LABELS)


@dataclass
class SiteParts:
    site: Site
    store: Store
    gateway: Gateway
    ledger: TaskLedger
    tls: SiteTls
    resolver: OrgResolver
    link: HttpPeerLink

    def close(self) -> None:
        self.link.close()
        self.gateway.close()
        self.store.close()


@contextmanager
def open_site(home: Path, org: str | None, task: str | None, store_url: str | None = None,
              address: str | None = None, bundle: Path | None = None) -> Iterator[SiteParts]:
    """Everything a site command needs, closed at the end; ``address``: the agent's own (default the network's).
    From a ``bundle`` (checked against its manifest first) the org, task, address, TLS files and trusted orgs are
    the bundle's, and ``home`` holds the site's own folder alone."""
    if bundle is not None:
        site, tls, resolver = _bundle_site(home, org, task, address, bundle)
        store = Store.open(store_url) if store_url else Store.for_site(site.layout.home, site.org_name)
    else:
        if org is None or task is None:
            raise SiteError("give --org and --task (or --bundle)")
        site = Site(home, org, task, address)
        topology = site.topology  # checks the network, task and org first
        task_orgs = [topology.org(name) for name in _task_orgs(site)]
        store = Store.open(store_url) if store_url else Store.for_site(site.layout.home, org)
        try:
            tls = issue_site_tls(site.layout, site.org, task_orgs, site.folder, site.host)
        except BaseException:
            store.close()
            raise
        resolver = OrgResolver.of_task(site.layout, task_orgs)
    try:
        gateway = Gateway.from_profile(site.profile, user="admin")
    except BaseException:
        store.close()
        raise
    parts = SiteParts(site, store, gateway, TaskLedger(gateway, site.task), tls, resolver, HttpPeerLink(tls, resolver))
    try:
        yield parts
    finally:
        parts.close()


def _bundle_site(home: Path, org: str | None, task: str | None, address: str | None,
                 folder: Path) -> tuple[Site, SiteTls, OrgResolver]:
    """The site a bundle describes, its TLS files and the task orgs it trusts."""
    bundle = open_bundle(folder)
    settings = bundle.settings
    for given, held, option in ((org, settings.org, "--org"), (task, settings.task, "--task")):
        if given is not None and given != held:
            raise SiteError(f"{option} {given} is not the bundle's ({held}): {describe(bundle)}")
    if address is not None and address != settings.site_address:
        raise SiteError(f"the bundle's site certificate names {settings.site_address}, not {address}: make a bundle "
                        "with 'swarmfuse network bundle --site-address'")
    cas = {o.mspid: x509.load_pem_x509_certificate(bundle.org_tls_ca(o).read_bytes()) for o in settings.orgs}
    site = Site(home, settings.org, settings.task, bundle=bundle)
    return site, site_tls(bundle.site_tls), OrgResolver(cas)


def _task_orgs(site: Site) -> list[str]:
    from swarmfuse.network import state as state_file

    current = state_file.load(site.layout.state_file)
    assert current is not None
    return current.tasks[site.task].orgs


def holdings(parts: SiteParts) -> dict[str, Holding]:
    """The site's latest dataset per modality, with its extractor bundle (text and images)."""
    found: dict[str, Holding] = {}
    for modality in MODALITIES:
        record = parts.store.latest_dataset(modality)
        if record is None:
            continue
        manifest = load_manifest(Path(record.manifest_path), modality, verify_images=False)  # type: ignore[arg-type]
        source = None if modality == LABELS else load_extractor(parts.site, modality)
        found[modality] = Holding(modality, manifest, source)
    return found


def extractor_dir(site: Site, modality: str) -> Path:
    return site.extractors / modality


def load_extractor(site: Site, modality: str) -> BundleSource:
    from swarmfuse.extractors.bundle import BundleError, load_bundle

    folder = extractor_dir(site, modality)
    if not (folder / "bundle.json").exists():
        raise SiteError(f"{site.org_name} has no {modality} extractor in {folder}: install one with "
                        f"'swarmfuse site extractor install --org {site.org_name} --modality {modality}'")
    try:
        return BundleSource(load_bundle(folder))
    except BundleError as exc:
        raise SiteError(f"the {modality} extractor of {site.org_name} cannot be used: {exc}") from exc


def install_extractor(site: Site, modality: str, bundle: Path) -> Path:
    """Copy an extractor bundle folder into the site (replacing the one it had)."""
    if not (bundle / "bundle.json").exists():
        raise SiteError(f"{bundle} is not an extractor bundle (no bundle.json)")
    target = extractor_dir(site, modality)
    staging = target.with_name(target.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    return target


def add_data(parts: SiteParts, manifest_path: Path, modality: str) -> Summary:
    """Check a manifest, keep it in the store, register the org if needed and publish the summary on-chain."""
    load_manifest(manifest_path, modality)  # type: ignore[arg-type]  # every bad row is refused before anything is kept
    agent = make_agent(parts, extra={modality: manifest_path})
    agent.ensure_registered(parts.tls.fingerprint())
    return agent.publish(modality)


def make_agent(parts: SiteParts, extra: dict[str, Path] | None = None) -> SiteAgent:
    held = holdings(parts)
    for modality, path in (extra or {}).items():
        manifest = load_manifest(path, modality)  # type: ignore[arg-type]
        source = None if modality == LABELS else load_extractor(parts.site, modality)
        held[modality] = Holding(modality, manifest, source)
    return SiteAgent(parts.site, parts.ledger, parts.store, parts.link, held)


def serve_site(parts: SiteParts, stop: threading.Event) -> None:
    """Run the agent (event loop) and its HTTPS service until ``stop``."""
    from swarmfuse.client.site.api import create_app, serve

    check_ports_free([parts.site.port], parts.site.host)  # a clear error before the server's thread would fail
    agent = make_agent(parts)
    server = serve(create_app(agent, parts.resolver), parts.site.host, parts.site.port, parts.tls)
    thread = threading.Thread(target=server.run, name="site-https", daemon=True)
    thread.start()
    try:
        agent.ensure_registered(parts.tls.fingerprint())
        agent.run(stop)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
