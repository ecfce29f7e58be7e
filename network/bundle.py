"""A site bundle (``swarmfuse network bundle --org DC2 --task T OUT``): what one org's host needs to run its site
agent against a running network, and nothing of another org's.

It holds the org's own admin and user identities (signing and client TLS pairs), its site agent's TLS pairs
issued for the site's address by the org's TLS CA (the CA's key stays in the network home), the TLS CAs and peer
endpoints of the task's orgs, the orderer's TLS CA, a connection profile whose paths are relative to the bundle,
the channel's genesis block (``genesis.block``: public, what ``audit verify --bundle`` checks block 0 against), the
site settings (``site.json``) and a manifest (``bundle.json``) of every file's SHA-256.
:func:`open_bundle` checks the manifest: a file altered, missing or added is refused by name.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import BaseModel, ConfigDict, ValidationError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.files import write_atomic, write_private
from swarmfuse.network import profiles
from swarmfuse.network import state as state_file
from swarmfuse.network.crypto import issue_tls_pair
from swarmfuse.network.errors import InvalidInput, NotRunning
from swarmfuse.network.layout import Layout, msp_key_pair
from swarmfuse.network.orghome import open_org_home
from swarmfuse.network.topology import Org, check_listen_address

FORMAT = "swarmfuse.site-bundle/1"
MANIFEST = "bundle.json"
SETTINGS = "site.json"
PROFILE = "connection.json"
GENESIS = "genesis.block"
SITE_CERT_DAYS = 825


class BundleError(SwarmfuseError, ValueError):
    """A bundle cannot be used: not a bundle, or a file altered, missing or added since it was made."""


class BundleOrg(BaseModel):
    """One org of the task as the site sees it: its TLS CA (a file of the bundle) and its peer's endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    mspid: str
    tls_ca: str
    peer: str


class SiteSettings(BaseModel):
    """``site.json``: which org and task the site serves, where its agent listens, and the task's orgs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["swarmfuse.site-bundle/1"] = FORMAT
    org: str
    mspid: str
    task: str
    engine: str
    site_address: str
    site_port: int
    orgs: list[BundleOrg]


class BundleManifest(BaseModel):
    """``bundle.json``: the SHA-256 of every other file of the bundle, by its path in the bundle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["swarmfuse.site-bundle/1"] = FORMAT
    org: str
    files: dict[str, str]


@dataclass(frozen=True)
class SiteBundle:
    """An opened, checked bundle."""

    folder: Path
    settings: SiteSettings
    manifest_sha256: str

    @property
    def profile(self) -> Path:
        return self.folder / PROFILE

    @property
    def site_tls(self) -> Path:
        """The folder of the site agent's ``tls/`` files (as :func:`swarmfuse.client.site.tls.site_tls` reads)."""
        return self.folder / "site"

    def org_tls_ca(self, org: BundleOrg) -> Path:
        return self.folder / org.tls_ca

    @property
    def genesis(self) -> Path:
        """The task channel's genesis block as ``task create`` made it (absent from a bundle made without it)."""
        return self.folder / GENESIS


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(home: Path, org_name: str, task: str, out: Path, site_address: str | None = None,
                 org_home: Path | None = None) -> SiteBundle:
    """Write ``org_name``'s bundle for ``task`` of the network under ``home`` into the new folder ``out``; the
    site listens on ``site_address`` (default the network's address) at its port of the topology. With
    ``org_home`` (the org's own home, ``swarmfuse org init``) its identities come from there and its TLS CA there
    issues the site's pairs: what an org that joined later does, whose keys the network home does not hold."""
    layout = Layout(home.expanduser().resolve())
    own = layout
    if org_home is not None:
        record = open_org_home(org_home).record
        if record.name != org_name:
            raise InvalidInput(f"{org_home} is {record.name}'s home, not {org_name}'s")
        own = Layout(org_home.expanduser().resolve())
    current = state_file.load(layout.state_file)
    if current is None:
        raise NotRunning(f"no network under {layout.home}: run 'swarmfuse network up' first")
    if task not in current.tasks:
        raise InvalidInput(f"no task {task!r} in {layout.home} (see 'swarmfuse task list')")
    topology = current.topology()
    org = topology.org(org_name)
    if org.name not in current.tasks[task].orgs:
        raise InvalidInput(f"org {org.name} is not one of task {task}'s orgs ({', '.join(current.tasks[task].orgs)})")
    address = check_listen_address(site_address) if site_address else topology.address
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"{out} exists and is not empty: a bundle is written into a new folder")
    if not own.user_dir(org, "Admin").is_dir():
        raise InvalidInput(f"{own.home} holds no identity of {org.name} (an org that joined later keeps them in its "
                           "own home): give that home with --org-home")
    task_orgs = [topology.org(name) for name in current.tasks[task].orgs]
    staging = out.with_name(f".{out.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _fill(staging, layout, own, org, task_orgs, address)
        identities = {user: _copy_identity(staging, own.user_dir(org, who), user)
                      for user, who in (("admin", "Admin"), ("user", "User1"))}
        profile = profiles.build(topology, own, org, current.engine)  # its paths are all replaced below
        _copy(layout.org_tls_ca(org), staging / "tls" / "peer-ca.pem")
        _copy(layout.orderer_tls_ca, staging / "tls" / "orderer-ca.pem")
        genesis = layout.channel_dir(task) / f"{task}.block"
        if genesis.is_file():  # public: what an auditor's host checks block 0 against
            _copy(genesis, staging / GENESIS)
        profile = profile.model_copy(update={
            "peer": profile.peer.model_copy(update={"tls_ca_cert": "tls/peer-ca.pem"}),
            "identities": identities,
            "orderers": [o.model_copy(update={"tls_ca_cert": "tls/orderer-ca.pem"}) for o in profile.orderers],
        })
        write_atomic(staging / PROFILE, (profile.model_dump_json(indent=2) + "\n").encode())
        settings = SiteSettings(
            org=org.name, mspid=org.mspid, task=task, engine=current.engine, site_address=address,
            site_port=topology.peer_ports(org).site,
            orgs=[BundleOrg(name=o.name, mspid=o.mspid, tls_ca=f"tls/orgs/{o.mspid}.pem",
                            peer=topology.endpoint(topology.peer_ports(o).listen)) for o in task_orgs],
        )
        write_atomic(staging / SETTINGS, (settings.model_dump_json(indent=2) + "\n").encode())
        files = {str(path.relative_to(staging)): _sha256(path) for path in sorted(staging.rglob("*")) if path.is_file()}
        manifest = BundleManifest(org=org.name, files=files)
        write_atomic(staging / MANIFEST, (manifest.model_dump_json(indent=2) + "\n").encode())
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.replace(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return open_bundle(out)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _copy_identity(folder: Path, user_dir: Path, name: str) -> profiles.KeyPair:
    """The identity's signing pair and client TLS pair under ``identities/<name>/``; paths relative to the bundle."""
    cert, key = msp_key_pair(user_dir / "msp")
    base = Path("identities") / name
    _copy(cert, folder / base / "cert.pem")
    write_private(folder / base / "key.pem", key.read_bytes())
    _copy(user_dir / "tls" / "client.crt", folder / base / "tls-client.crt")
    write_private(folder / base / "tls-client.key", (user_dir / "tls" / "client.key").read_bytes())
    return profiles.KeyPair(cert=str(base / "cert.pem"), key=str(base / "key.pem"),
                            tls_client=profiles.TlsPair(cert=str(base / "tls-client.crt"),
                                                        key=str(base / "tls-client.key")))


def _fill(folder: Path, layout: Layout, own: Layout, org: Org, task_orgs: list[Org], address: str) -> None:
    """The task orgs' TLS CAs (from the network home ``layout``), and the site agent's TLS pairs for ``address``
    issued by the org's TLS CA in ``own`` (its home), with its trust bundle."""
    for each in task_orgs:
        _copy(layout.org_tls_ca(each), folder / "tls" / "orgs" / f"{each.mspid}.pem")
    tls = folder / "site" / "tls"
    tls.mkdir(parents=True)
    issue_tls_pair(own, org, f"site.{org.domain}", ExtendedKeyUsageOID.SERVER_AUTH, tls / "server.crt",
                   tls / "server.key", SITE_CERT_DAYS, hosts=(address,))
    issue_tls_pair(own, org, f"site-client.{org.domain}", ExtendedKeyUsageOID.CLIENT_AUTH, tls / "client.crt",
                   tls / "client.key", SITE_CERT_DAYS, hosts=())
    (tls / "trust.pem").write_bytes(b"".join(layout.org_tls_ca(each).read_bytes() for each in task_orgs))


def open_bundle(folder: Path) -> SiteBundle:
    """The bundle in ``folder`` once every file matches its manifest; :class:`BundleError` naming each file altered,
    missing or not in the manifest."""
    folder = folder.expanduser().resolve()
    manifest_path = folder / MANIFEST
    try:
        raw = manifest_path.read_bytes()
        manifest = BundleManifest.model_validate_json(raw)
    except OSError as exc:
        raise BundleError(f"{folder} is not a site bundle: cannot read {MANIFEST} ({exc.strerror or exc})") from None
    except ValidationError as exc:
        raise BundleError(f"{manifest_path} is not a site bundle manifest: {exc.errors()[0]['msg']}") from None
    present = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()} - {MANIFEST}
    problems = [f"{name} is missing" for name in sorted(set(manifest.files) - present)]
    problems += [f"{name} is not in the manifest" for name in sorted(present - set(manifest.files))]
    problems += [f"{name} was altered (SHA-256 differs from the manifest's)" for name in sorted(present & set(manifest.files))
                 if _sha256(folder / name) != manifest.files[name]]
    if problems:
        raise BundleError(f"the site bundle {folder} was changed since it was made: {'; '.join(problems)}")
    try:
        settings = SiteSettings.model_validate_json((folder / SETTINGS).read_bytes())
    except (OSError, ValidationError) as exc:
        raise BundleError(f"{folder / SETTINGS} is not valid site settings: {exc}") from None
    if settings.org != manifest.org:
        raise BundleError(f"{folder}: the manifest is {manifest.org}'s, the settings {settings.org}'s")
    return SiteBundle(folder, settings, hashlib.sha256(raw).hexdigest())


def describe(bundle: SiteBundle) -> str:
    """One line naming the bundle and its manifest's SHA-256 (to compare with what its maker printed)."""
    return (f"site bundle of {bundle.settings.org} for task {bundle.settings.task} (manifest SHA-256 "
            f"{bundle.manifest_sha256})")

