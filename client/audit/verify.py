"""``swarmfuse audit verify``: check a task channel's ledger end to end, from what any channel reader gets.

1. Every block from genesis to the newest, read through Deliver with our Gateway client, the same code
   on the embedded engine and on Fabric (both serve Fabric-format blocks), replayed by
   :class:`~swarmfuse.client.audit.replay.LedgerReplay`: hash chain, data hashes, orderer signatures,
   LAST_CONFIG, COMMIT_HASH, and each transaction's creator, endorsements, policies and validation code.
2. The chaincode's state (``Audit:StateDigest``: every key with the SHA-256 of its value) against the
   values the valid transactions wrote; a key that differs is named with the transaction and block that
   last wrote it.
3. Optionally a site folder's artefacts against the exchange and model records
   (:mod:`~swarmfuse.client.audit.artefacts`).

The result is a :class:`~swarmfuse.client.audit.report.VerificationReport` (``ok`` when no check failed).

    report = verify_task(Path("~/.swarmfuse").expanduser(), "emoji", artefacts=Path("~/.swarmfuse/sites/DC1"))
    write_report(report, Path("verify-report"))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from swarmfuse.client.audit.artefacts import artefact_checks
from swarmfuse.client.audit.queries import AuditError, AuditView
from swarmfuse.client.audit.replay import LedgerReplay
from swarmfuse.client.audit.report import Category, Check, Status, VerificationReport
from swarmfuse.client.gateway import Gateway
from swarmfuse.client.gateway.network import Network
from swarmfuse.client.ledger import CHAINCODE, LedgerRefused, TaskLedger, task_org, task_topology
from swarmfuse.network import state as state_file
from swarmfuse.network.bundle import BundleError, describe, open_bundle
from swarmfuse.network.topology import AUDITOR

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called after each block with (its number, the newest block number known)."""

CATCH_UP_ATTEMPTS = 5
"""How often the state is read again when blocks were committed while it was being read."""


def verify_channel(gateway: Gateway, channel: str, *, artefacts: Path | None = None, artefacts_org: str | None = None,
                   genesis: Path | None = None, engine: str | None = None,
                   progress: Progress | None = None) -> VerificationReport:
    """Verify channel ``channel`` through a connected gateway (any channel reader's identity will do; the
    state digest needs a reader of the task). ``artefacts`` is a site folder to check against the ledger,
    ``artefacts_org`` the MSP ID of its org when known; ``genesis`` a file holding the genesis block the
    channel was created from, for block 0 to be checked against; ``engine`` only labels the report."""
    started, clock = datetime.now(UTC), time.perf_counter()
    network = gateway.network(channel)
    ledger = TaskLedger(gateway, channel)
    replay = LedgerReplay(CHAINCODE, *_genesis(genesis))
    _walk(network, replay, network.newest_block().header.number, progress)
    digest, why = _settled_digest(network, ledger, replay, progress)
    replay.final_checks(digest, why)
    checks = list(replay.checks)
    if artefacts is not None:
        checks += _artefact_checks(AuditView(ledger), artefacts, artefacts_org)
    report = VerificationReport(
        channel=channel, chaincode=CHAINCODE, engine=engine, identity=gateway.identity.msp_id,
        newest_block=replay.newest, artefacts=str(artefacts) if artefacts is not None else None,
        started_at=started, seconds=round(time.perf_counter() - clock, 3), checks=checks)
    logger.info("verified %s: blocks 0..%d, %d checks, %d failed in %.2f s", channel, report.newest_block,
                len(checks), report.summary.failed, report.seconds)
    return report


def verify_task(home: Path, task: str, org: str = AUDITOR, *, artefacts: Path | None = None,
                progress: Progress | None = None) -> VerificationReport:
    """Verify task ``task`` of the network under ``home`` as the user of ``org`` (the read-only Auditor by
    default). An ``artefacts`` folder named after an org of the network (``<home>/sites/DC2``) is that
    org's; raises ``TaskUnknown`` for no network, task or org, ``GatewayError`` when the peer is unreachable."""
    topology = task_topology(home, task, org)  # checks the network, the task and that the org is one of its orgs
    layout, found = task_org(home, task, org)
    current = state_file.load(layout.state_file)
    owner = None
    if artefacts is not None:
        owner = next((o.mspid for o in topology.orgs if artefacts.name in (o.name, o.mspid)), None)
    genesis = layout.channel_dir(task) / f"{task}.block"  # what task create made the channel from
    with Gateway.from_profile(layout.profile(found), user="user") as gateway:
        return verify_channel(gateway, task, artefacts=artefacts, artefacts_org=owner,
                              genesis=genesis if genesis.is_file() else None,
                              engine=current.engine if current else None, progress=progress)


def verify_bundle(folder: Path, *, task: str | None = None, org: str | None = None, artefacts: Path | None = None,
                  progress: Progress | None = None) -> VerificationReport:
    """Verify the task of the org bundle in ``folder`` (``swarmfuse network bundle``, checked against its manifest
    first) as the bundle's user, on a host that holds no network home: the bundle's connection profile reaches the
    org's peer, and its copy of the channel's genesis block (when it has one) is what block 0 is checked against.
    ``task`` and ``org``, when given, must be the bundle's. Raises ``BundleError`` for a changed bundle or another
    task or org, ``GatewayError`` when the peer is unreachable."""
    bundle = open_bundle(folder)
    settings = bundle.settings
    if task is not None and task != settings.task:
        raise BundleError(f"--task {task} is not the bundle's ({settings.task}): {describe(bundle)}")
    if org is not None and org not in (settings.org, settings.mspid):
        raise BundleError(f"--org {org} is not the bundle's ({settings.org}): {describe(bundle)}")
    owner = None
    if artefacts is not None:
        owner = next((o.mspid for o in settings.orgs if artefacts.name in (o.name, o.mspid)), None)
    genesis = bundle.genesis
    with Gateway.from_profile(bundle.profile, user="user") as gateway:
        return verify_channel(gateway, settings.task, artefacts=artefacts, artefacts_org=owner,
                              genesis=genesis if genesis.is_file() else None, engine=settings.engine,
                              progress=progress)


def _genesis(path: Path | None) -> tuple[common_pb2.Block | None, str]:
    """The genesis block a file holds, and how the report names it; ``(None, "")`` without a file.
    ``OSError``/``ValueError`` when it cannot be read or is not a block."""
    if path is None:
        return None, ""
    try:
        return common_pb2.Block.FromString(path.read_bytes()), f"the genesis block of {path}"
    except DecodeError as exc:
        raise ValueError(f"{path} does not hold a block: {exc}") from exc


def _walk(network: Network, replay: LedgerReplay, newest: int, progress: Progress | None) -> None:
    """Replay blocks ``replay.newest + 1 .. newest`` from the channel's Deliver service."""
    first = replay.newest + 1
    if first > newest:
        return
    with network.block_events(start_block=first) as blocks:
        for count, block in enumerate(blocks, start=1):
            replay.add(block)
            if progress is not None:
                progress(block.header.number, newest)
            if count == newest - first + 1:
                break


def _settled_digest(network: Network, ledger: TaskLedger, replay: LedgerReplay,
                    progress: Progress | None) -> tuple[dict[str, str] | None, str]:
    """The state digest at the height the replay reached: read, then re-read after replaying any block
    committed meanwhile, until no block came in between; ``(None, why)`` when it cannot be had."""
    for _ in range(CATCH_UP_ATTEMPTS):
        try:
            digest = {item["key"]: item["sha256"] for item in ledger.pages("Audit:StateDigest")}
        except LedgerRefused as exc:
            return None, f"the state digest cannot be read: {exc.message}"
        newest = network.newest_block().header.number
        if newest == replay.newest:
            return digest, ""
        _walk(network, replay, newest, progress)
    return None, f"blocks kept coming while the state was read ({CATCH_UP_ATTEMPTS} attempts)"


def _artefact_checks(view: AuditView, folder: Path, owner: str | None) -> list[Check]:
    if not folder.is_dir():
        return [Check(category=Category.ARTEFACTS, name="artefacts", subject=f"folder {folder}", status=Status.FAIL,
                      detail="not a folder")]
    try:
        rounds = {r.round_id: view.round(r.round_id) for r in view.rounds()}
    except AuditError as exc:
        return [Check(category=Category.ARTEFACTS, name="artefacts", subject=f"folder {folder}", status=Status.SKIP,
                      detail=f"the rounds cannot be read: {exc}")]
    return artefact_checks(folder, rounds, owner)
