"""Collaboration tasks: one application channel per task, with the swarmfuse chaincode committed on it.

``create`` makes the channel on the home's engine (Fabric: genesis block with configtxgen, orderers
joined with osnadmin, peers joined, the chaincode approved by every org and committed; embedded: the
genesis config block is built here and joined through the engine's participation API), then
initialises the task through the Gateway client and returns only once every task org's gateway can
endorse. ``invoke`` and ``query`` go through the Gateway client on either engine.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import yaml

from swarmfuse.chaincode.contracts.records import (
    DEFAULT_DEADLINE_WINDOW_S,
    MAX_DEADLINE_WINDOW_S,
    MIN_DEADLINE_WINDOW_S,
    TaskConfig,
)
from swarmfuse.client.gateway import EndorseError, Gateway, GatewayError, IdentityError
from swarmfuse.client.gateway.commit import raise_unless_valid
from swarmfuse.network.ccaas import CHAINCODE_NAME, CHAINCODE_VERSION
from swarmfuse.network.configtx import PROFILE, channel_config, endorsement_policy
from swarmfuse.network.control import Network
from swarmfuse.network.embedded.genesis import channel_definition, genesis_block
from swarmfuse.network.errors import CommandFailed, InvalidInput, NetworkError, NotRunning
from swarmfuse.network.ordering import wait_for_leaders
from swarmfuse.network.peercli import PeerCli
from swarmfuse.network.procs import run_checked
from swarmfuse.network.state import TaskRecord
from swarmfuse.network.topology import Org, parse_org_list, validate_channel_name
from swarmfuse.retry import retrying

logger = logging.getLogger(__name__)

RETRY_S = 60.0
READY_S = 90.0
# What a Fabric gateway answers while gossip has not yet told it which peers run the new chaincode.
GOSSIP_NOT_READY = ("no combination of peers", "no peers available", "failed to find any endorsing peers")


class TransactionFailed(NetworkError):
    """A transaction was refused by the chaincode, the endorsers, the orderer or at commit."""


@dataclass(frozen=True)
class InvokeResult:
    """A committed transaction: its ID, block and the chaincode's payload."""

    tx_id: str
    block_number: int
    payload: bytes


def create(
    network: Network, name: str, org_list: str, deadline_window_s: int = DEFAULT_DEADLINE_WINDOW_S
) -> TaskRecord:
    """Create task channel ``name`` for the orgs in ``org_list`` (``DC1,DC2,...``) and deploy the chaincode;
    every deadline a transaction of the task sets must leave ``deadline_window_s`` after the endorser's clock."""
    validate_channel_name(name)
    network.require_state()
    if not MIN_DEADLINE_WINDOW_S <= deadline_window_s <= MAX_DEADLINE_WINDOW_S:
        raise InvalidInput(f"the deadline window must be {MIN_DEADLINE_WINDOW_S} to {MAX_DEADLINE_WINDOW_S} seconds, "
                           f"not {deadline_window_s}")
    with network.locked():
        return _create(network, name, org_list, deadline_window_s)


def _create(network: Network, name: str, org_list: str, deadline_window_s: int) -> TaskRecord:
    current = network.require_state()
    topology = current.topology()
    orgs = parse_org_list(org_list, topology)
    if name in current.tasks:
        raise InvalidInput(f"task {name!r} already exists")
    down = [node for node in network.process_names(current) if network.supervisor.pid(node) is None]
    if down:
        raise NotRunning(f"the network is not fully running ({', '.join(down)} down): run 'swarmfuse network up'")
    policy = endorsement_policy(orgs)
    if current.engine == "fabric":
        _create_on_fabric(network, name, orgs, policy)
    else:
        _create_on_engine(network, name, orgs, policy)
    members = [org for org in orgs if not org.auditor]
    config = TaskConfig(task=name, founders=[o.mspid for o in members],
                        auditors=[o.mspid for o in orgs if o.auditor], deadline_window_s=deadline_window_s)
    _initialise(network, name, members, config)
    _wait_until_endorsable(network, name, orgs)
    record = TaskRecord(name=name, orgs=[o.name for o in orgs], policy=policy, created=dt.datetime.now(dt.UTC).isoformat())
    current.tasks[name] = record
    network.save(current)
    return record


def _create_on_fabric(network: Network, name: str, orgs: Sequence[Org], policy: str) -> None:
    current = network.require_state()
    cli = network.peer_cli()
    block = _genesis_block(network, name, orgs)
    _join_orderers(network, name, block)
    wait_for_leaders(current.topology(), [name])
    _parallel(lambda org: cli.check(org, "channel", "join", "-b", block), orgs)
    _parallel(lambda org: _approve(cli, name, org, current.package_ids[org.name], policy), orgs)
    _commit(cli, name, orgs, policy)


def _create_on_engine(network: Network, name: str, orgs: Sequence[Org], policy: str) -> None:
    """Build the genesis config block here (signed by the orderer org's admin) and join it on the engine."""
    topology = network.require_state().topology()
    definition = channel_definition(topology, network.layout, name, orgs, CHAINCODE_NAME, CHAINCODE_VERSION, policy)
    block = genesis_block(network.layout, definition)
    folder = network.layout.channel_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.block").write_bytes(block.SerializeToString())
    body = {
        "config_block": base64.b64encode(block.SerializeToString()).decode(),
        "chaincode": {"name": CHAINCODE_NAME, "version": CHAINCODE_VERSION, "sequence": 1, "endorsement_policy": policy},
    }
    _participation(network, "POST", body)


def define(network: Network, name: str) -> TaskRecord:
    """Commit the next definition of task ``name``'s chaincode, endorsed by a majority of the channel's member orgs
    as its config now has them (orgs joined or left by channel updates), and record the task's orgs and policy
    (embedded engine: its ``_lifecycle`` commit; the task's definition is kept when it already has that policy)."""
    current = network.require_state()
    if name not in current.tasks:
        raise InvalidInput(f"no task {name!r} in {network.home} (see 'swarmfuse task list')")
    if current.engine != "embedded":
        raise InvalidInput("swarmfuse defines a task's chaincode anew on the embedded engine only; on Fabric each org "
                           "runs peer lifecycle chaincode approveformyorg, then one commits")
    with network.locked():
        defined = _participation(network, "POST", {}, f"/{name}/chaincode")
        topology = current.topology()
        by_mspid = {org.mspid: org.name for org in topology.orgs}
        mspids = [str(m) for m in cast(list, defined["orgs"])]
        record = current.tasks[name].model_copy(update={
            "orgs": [by_mspid[m] for m in mspids if m in by_mspid], "policy": str(defined["endorsement_policy"])})
        current.tasks[name] = record
        network.save(current)
    logger.info("task %s: chaincode at sequence %s, policy %s", name, defined["sequence"], record.policy)
    return record


def _participation(network: Network, method: str, body: dict[str, object] | None = None,
                   path: str = "") -> dict[str, object]:
    """Call the engine's channel-participation API with the orderer admin's TLS client certificate."""
    layout = network.layout
    topology = network.require_state().topology()
    admin_tls = layout.orderer_admin_dir / "tls"
    context = ssl.create_default_context(cafile=str(layout.orderer_tls_ca))
    context.load_cert_chain(admin_tls / "client.crt", admin_tls / "client.key")
    url = (f"https://{topology.address}:{topology.orderer_ports(topology.orderers[0]).admin}"
           f"/participation/v1/channels{path}")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=60) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        reason = exc.read().decode(errors="replace")
        raise CommandFailed(f"the engine refused the request ({exc.code}): {reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NotRunning(f"the engine's participation endpoint is unreachable: {exc}") from exc


def _initialise(network: Network, name: str, members: Sequence[Org], config: TaskConfig) -> None:
    """``Task:Init`` by the first founder, ``Task:Confirm`` by each other founder (one after another: each
    confirmation may be the deciding one), then a check that the active task is the one proposed."""
    endorsers = [org.mspid for org in members]
    document = config.model_dump_json()
    digest = config.sha256()
    deadline = time.monotonic() + READY_S

    def once_gossip_is_ready(org: Org, function: str, *args: str) -> None:
        # On Fabric, gossip needs a few seconds to tell each gateway about the new chaincode and the channel's
        # peers, and each gateway learns them on its own (a peer on its first channel takes longest): every
        # founder's gateway may answer "not ready" for a while. Such a refusal comes before ordering, so
        # endorsing again is safe.
        retrying(lambda: invoke(network, name, org, function, *args, endorsers=endorsers),
                 lambda exc: isinstance(exc, TransactionFailed) and any(text in str(exc) for text in GOSSIP_NOT_READY),
                 within=deadline - time.monotonic(), first_wait=1.0, max_wait=1.0)

    once_gossip_is_ready(members[0], "Task:Init", document)
    for founder in members[1:]:
        once_gossip_is_ready(founder, "Task:Confirm", digest)
    active = json.loads(query(network, name, members[0], "Task:Get"))
    if active["config_sha256"] != digest:
        raise TransactionFailed(f"task {name} became active with founders {active['founders']} and auditors "
                                f"{active['auditors']}, not the configuration proposed")


def _wait_until_endorsable(network: Network, name: str, orgs: Sequence[Org], timeout: float = READY_S) -> None:
    """Return once every task org's gateway reaches enough endorsers (a chaincode refusal counts as reached)."""

    def endorsable(org: Org) -> None:
        with _gateway(network, org) as gateway:
            contract = gateway.network(name).contract(CHAINCODE_NAME)

            def endorse() -> None:
                try:
                    contract.new_proposal("Task:Get").endorse()
                except EndorseError as exc:
                    if not (exc.details and all("chaincode response" in d.message for d in exc.details)):
                        raise

            try:
                retrying(endorse, EndorseError, within=timeout, first_wait=0.5, max_wait=0.5)
            except EndorseError as exc:
                raise TransactionFailed(f"{org.name}'s gateway cannot endorse on {name}: {exc}") from exc

    _parallel(endorsable, orgs)


def _gateway(network: Network, org: Org, user: str = "admin") -> Gateway:
    try:
        return Gateway.from_profile(network.layout.profile(org), user=user)
    except (GatewayError, IdentityError) as exc:
        raise NotRunning(f"cannot reach {org.name}'s gateway: {exc}") from exc


def invoke(network: Network, channel: str, org: Org, function: str, *args: str,
           endorsers: Sequence[str] | None = None, user: str = "admin") -> InvokeResult:
    """Submit ``function(args)`` as ``org``'s ``user`` through its gateway and wait for a valid commit."""
    try:
        with _gateway(network, org, user) as gateway:
            contract = gateway.network(channel).contract(CHAINCODE_NAME)
            transaction = contract.new_proposal(function, *args, endorsing_orgs=endorsers).endorse()
            status = transaction.submit().status()
            raise_unless_valid(status)
            return InvokeResult(status.transaction_id, status.block_number, transaction.result)
    except GatewayError as exc:
        raise TransactionFailed(str(exc)) from exc


def query(network: Network, channel: str, org: Org, function: str, *args: str, user: str = "admin") -> bytes:
    """Evaluate ``function(args)`` on ``org``'s peer as its ``user``; the chaincode's payload."""
    try:
        with _gateway(network, org, user) as gateway:
            return gateway.network(channel).contract(CHAINCODE_NAME).evaluate_transaction(function, *args)
    except GatewayError as exc:
        raise TransactionFailed(str(exc)) from exc


def _genesis_block(network: Network, name: str, orgs: Sequence[Org]) -> str:
    folder = network.layout.channel_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    topology = network.require_state().topology()
    (folder / "configtx.yaml").write_text(yaml.safe_dump(channel_config(topology, network.layout, orgs), sort_keys=False))
    block = folder / f"{name}.block"
    run_checked([
        network.fabric.bin("configtxgen"), "-configPath", str(folder), "-profile", PROFILE,
        "-channelID", name, "-outputBlock", str(block),
    ])
    return str(block)


def _join_orderers(network: Network, name: str, block: str) -> None:
    layout = network.layout
    topology = network.require_state().topology()
    admin_tls = layout.orderer_admin_dir / "tls"
    for orderer in topology.orderers:
        run_checked([
            network.fabric.bin("osnadmin"), "channel", "join", "--channelID", name, "--config-block", block,
            "-o", f"{topology.address}:{topology.orderer_ports(orderer).admin}", "--ca-file", str(layout.orderer_tls_ca),
            "--client-cert", str(admin_tls / "client.crt"), "--client-key", str(admin_tls / "client.key"),
        ])


def _approve(cli: PeerCli, channel: str, org: Org, package_id: str, policy: str) -> None:
    # Retried: under BFT there is no leader metric to wait for, and ordering may not be ready yet.
    _retry(lambda: cli.check(
        org, "lifecycle", "chaincode", "approveformyorg", *cli.orderer_args(), "--channelID", channel,
        "--name", CHAINCODE_NAME, "--version", CHAINCODE_VERSION, "--package-id", package_id, "--sequence", "1",
        "--signature-policy", policy,
    ), f"approve the chaincode for {org.name} on {channel}")


def _commit(cli: PeerCli, channel: str, orgs: Sequence[Org], policy: str) -> None:
    definition = ["--channelID", channel, "--name", CHAINCODE_NAME, "--version", CHAINCODE_VERSION,
                  "--sequence", "1", "--signature-policy", policy]

    def ready() -> None:
        out = cli.check(orgs[0], "lifecycle", "chaincode", "checkcommitreadiness", *definition, "--output", "json")
        approvals = json.JSONDecoder().raw_decode(out[out.index("{"):])[0]["approvals"]
        if not all(approvals.get(org.mspid) for org in orgs):
            raise CommandFailed(f"approvals so far: {approvals}")

    _retry(ready, f"collect approvals on {channel}")
    cli.check(orgs[0], "lifecycle", "chaincode", "commit", *cli.orderer_args(), *definition, *cli.peer_args(orgs))


def _retry(action: Callable[[], object], what: str, timeout: float = RETRY_S) -> None:
    try:
        retrying(action, CommandFailed, within=timeout, first_wait=0.5, max_wait=4.0)
    except CommandFailed as exc:
        raise NetworkError(f"could not {what} within {timeout:.0f}s: {exc}") from exc


def _parallel(action: Callable[[Org], object], orgs: Sequence[Org]) -> None:
    with ThreadPoolExecutor(max_workers=len(orgs)) as pool:
        for future in [pool.submit(action, org) for org in orgs]:
            future.result()
