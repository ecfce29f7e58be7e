"""Collaboration tasks: one application channel per task, with the swarmfuse chaincode committed on it.

``create`` makes the genesis block, joins every orderer (``osnadmin``) and every member peer, approves
the chaincode for each member org, commits it with the MAJORITY-of-DC-orgs endorsement policy and
calls ``Task:Init`` with the founders and auditors.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import yaml

from swarmfuse.network.ccaas import CHAINCODE_NAME, CHAINCODE_VERSION
from swarmfuse.network.configtx import PROFILE, channel_config, endorsement_policy
from swarmfuse.network.control import Network
from swarmfuse.network.errors import CommandFailed, InvalidInput, NetworkError, NotRunning
from swarmfuse.network.ordering import wait_for_leaders
from swarmfuse.network.peercli import InvokeResult, PeerCli, parse_invoke_output
from swarmfuse.network.procs import run_checked
from swarmfuse.network.state import TaskRecord
from swarmfuse.network.topology import HOST, Org, parse_org_list, validate_channel_name

logger = logging.getLogger(__name__)

RETRY_S = 60.0


def create(network: Network, name: str, org_list: str) -> TaskRecord:
    """Create task channel ``name`` for the orgs in ``org_list`` (``DC1,DC2,...``) and deploy the chaincode."""
    validate_channel_name(name)
    network.require_state()
    with network.locked():
        return _create(network, name, org_list)


def _create(network: Network, name: str, org_list: str) -> TaskRecord:
    current = network.require_state()
    topology = current.topology()
    orgs = parse_org_list(org_list, topology)
    if name in current.tasks:
        raise InvalidInput(f"task {name!r} already exists")
    down = [node for node in network.process_names(current) if network.supervisor.pid(node) is None]
    if down:
        raise NotRunning(f"the network is not fully running ({', '.join(down)} down): run 'swarmfuse network up'")
    cli = network.peer_cli()
    block = _genesis_block(network, name, orgs)
    _join_orderers(network, name, block)
    wait_for_leaders(topology, [name])
    _parallel(lambda org: cli.check(org, "channel", "join", "-b", block), orgs)
    policy = endorsement_policy(orgs)
    _parallel(lambda org: _approve(cli, name, org, current.package_ids[org.name], policy), orgs)
    _commit(cli, name, orgs, policy)
    members = [org for org in orgs if not org.auditor]
    config = {"task": name, "founders": [o.mspid for o in members], "auditors": [o.mspid for o in orgs if o.auditor]}
    invoke(cli, name, members[0], members, "Task:Init", json.dumps(config, separators=(",", ":")))
    record = TaskRecord(name=name, orgs=[o.name for o in orgs], policy=policy, created=dt.datetime.now(dt.UTC).isoformat())
    current.tasks[name] = record
    network.save(current)
    return record


def invoke(
    cli: PeerCli, channel: str, org: Org, endorsers: Sequence[Org], function: str, *args: str, wait: bool = True
) -> InvokeResult:
    """Submit ``function(args)`` as ``org``'s admin, endorsed by ``endorsers``; with ``wait``, until committed."""
    ctor = json.dumps({"Args": [function, *args]})
    output = cli.check(
        org, "chaincode", "invoke", *cli.orderer_args(), "-C", channel, "-n", CHAINCODE_NAME, "-c", ctor,
        *cli.peer_args(endorsers), *(["--waitForEvent"] if wait else []),
    )
    return parse_invoke_output(output)


def query(cli: PeerCli, channel: str, org: Org, function: str, *args: str) -> str:
    """Evaluate ``function(args)`` on ``org``'s peer as its admin; the payload as printed by the CLI."""
    ctor = json.dumps({"Args": [function, *args]})
    return cli.check(org, "chaincode", "query", "-C", channel, "-n", CHAINCODE_NAME, "-c", ctor, stdout_only=True).removesuffix("\n")


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
            "-o", f"{HOST}:{topology.orderer_ports(orderer).admin}", "--ca-file", str(layout.orderer_tls_ca),
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
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            action()
            return
        except CommandFailed as exc:
            if time.monotonic() + delay > deadline:
                raise NetworkError(f"could not {what} within {timeout:.0f}s: {exc}") from exc
            logger.debug("retrying (%s): %s", what, exc)
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def _parallel(action: Callable[[Org], object], orgs: Sequence[Org]) -> None:
    with ThreadPoolExecutor(max_workers=len(orgs)) as pool:
        for future in [pool.submit(action, org) for org in orgs]:
            future.result()
