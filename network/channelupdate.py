"""Changing a task channel's membership by channel update, as an operator does it on Fabric with
``configtxlator`` and ``peer channel signconfigtx|update``: the update is built from the config in force (read
through an org's Deliver service), each org admin signs it with the key in its own home, and one admin submits
it; the orderer applies it only when the signatures satisfy each changed element's ``mod_policy`` (for a new
application org: the Application group's ``Admins``, a MAJORITY of the orgs' admins).

A home is either a network home (``state.json``; ``--org`` names whose admin signs or submits) or an org home
made by ``swarmfuse org init`` (its own admin). Submitting sends the envelope to the orderer's Broadcast (the
first orderer of the org's connection profile) and returns once the org's peer serves the new config block."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer.ab_pb2_grpc import AtomicBroadcastStub

from swarmfuse.client.gateway import Gateway, GatewayError, IdentityError
from swarmfuse.client.gateway.network import Network as ChannelNetwork
from swarmfuse.files import write_atomic
from swarmfuse.network import state as state_file
from swarmfuse.network.errors import InvalidInput, NetworkError, NotRunning
from swarmfuse.network.layout import Layout, msp_key_pair
from swarmfuse.network.orgdef import OrgDefinitionFile
from swarmfuse.network.orghome import ORG_FILE, open_org_home
from swarmfuse.network.profiles import Profile
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.configcompute import add_org_update, remove_org_update
from swarmfuse.network.protocol.configsign import read_update, sign_update, unsigned_update
from swarmfuse.network.protocol.identity import ECDSASigner, Identity, digest
from swarmfuse.wait import wait_until

logger = logging.getLogger(__name__)

CONFIG_WAIT_S = 60.0


class UpdateRefused(NetworkError):
    """The channel's orderer refused the update (too few admins' signatures, a stale update...)."""


@dataclass(frozen=True)
class Admin:
    """An org admin's signing identity, from the MSP folder in its home."""

    mspid: str
    serialized: bytes
    signer: ECDSASigner

    def sign(self, message: bytes) -> bytes:
        return self.signer.sign(digest(message))


@dataclass(frozen=True)
class UpdateSummary:
    """What an update file holds: its channel and who signed it so far (MSP ID of each signer)."""

    channel: str
    signed_by: tuple[str, ...]


def admin_of(home: Path, org: str | None) -> Admin:
    """The admin of ``org`` in a network home, or of the org of an org home (``org``, if given, must name it)."""
    home = home.expanduser().resolve()
    if (home / ORG_FILE).is_file():
        org_home = open_org_home(home)
        if org is not None and org != org_home.record.name:
            raise InvalidInput(f"{home} holds org {org_home.record.name}, not {org}")
        return _admin(org_home.record.mspid, org_home.user_dir("Admin") / "msp")
    current = state_file.load(Layout(home).state_file)
    if current is None:
        raise InvalidInput(f"{home} holds neither a network nor an org")
    if org is None:
        raise InvalidInput(f"{home} is a network home: name the org whose admin acts with --org")
    found = current.topology().org(org)
    return _admin(found.mspid, Layout(home).user_dir(found, "Admin") / "msp")


def _admin(mspid: str, msp: Path) -> Admin:
    cert, key = msp_key_pair(msp)
    return Admin(mspid, Identity.from_pem_file(mspid, cert).serialize(), ECDSASigner.from_pem_file(key))


def _gateway(home: Path, org: str) -> Gateway:
    layout = Layout(home.expanduser().resolve())
    current = state_file.load(layout.state_file)
    if current is None:
        raise InvalidInput(f"{layout.home} is not a network home: the update is read and submitted through an org's "
                           "gateway of a running network")
    if current.engine != "embedded":
        raise InvalidInput("channel updates through swarmfuse are made and tested on the embedded engine only; on "
                           "Fabric, use peer channel fetch config, configtxlator and peer channel update")
    found = current.topology().org(org)
    try:
        return Gateway.from_profile(layout.profile(found), user="admin")
    except (GatewayError, IdentityError) as exc:
        raise NotRunning(f"cannot reach {org}'s gateway: {exc}") from exc


def _config_in_force(network: ChannelNetwork) -> tuple[int, configtx_pb2.Config]:
    """The number and config of the channel's newest config block, read through Deliver."""
    newest = network.newest_block()
    assert isinstance(newest, common_pb2.Block)
    index = blockfmt.last_config_index(newest)
    if index == newest.header.number:
        return index, blockfmt.config_of_block(newest)[1]
    with network.block_events(start_block=index) as blocks:
        block = next(iter(blocks))
    return index, blockfmt.config_of_block(block)[1]


def add_org(home: Path, task: str, org: str, definition: Path) -> configtx_pb2.ConfigUpdate:
    """The update adding the org of ``definition`` to ``task``'s channel, from the config ``org``'s peer serves."""
    new_org = OrgDefinitionFile.load(definition).to_org()
    return _update(home, task, org, lambda config: add_org_update(config, task, new_org))


def remove_org(home: Path, task: str, org: str, name: str) -> configtx_pb2.ConfigUpdate:
    """The update removing org ``name`` from ``task``'s channel, from the config ``org``'s peer serves."""
    return _update(home, task, org, lambda config: remove_org_update(config, task, name))


def _update(home: Path, task: str, org: str,
            build: Callable[[configtx_pb2.Config], configtx_pb2.ConfigUpdate]) -> configtx_pb2.ConfigUpdate:
    """``build`` applied to the config in force of ``task``'s channel, as ``org``'s peer serves it."""
    try:
        with _gateway(home, org) as gateway:
            _, config = _config_in_force(gateway.network(task))
    except GatewayError as exc:
        raise NetworkError(f"cannot read the config of channel {task} through {org}'s peer: {exc}") from exc
    try:
        return build(config)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def write_unsigned(update: configtx_pb2.ConfigUpdate, path: Path) -> None:
    write_atomic(path, unsigned_update(update).SerializeToString())


def summary(data: bytes) -> UpdateSummary:
    """The channel of an update file and the MSP IDs of its signers; :class:`InvalidInput` when it is none."""
    try:
        channel, envelope = read_update(data)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    signers = []
    for signature in envelope.signatures:
        creator = common_pb2.SignatureHeader.FromString(signature.signature_header).creator
        signers.append(identities_pb2.SerializedIdentity.FromString(creator).mspid)
    return UpdateSummary(channel, tuple(signers))


def sign(path: Path, admin: Admin) -> UpdateSummary:
    """Add ``admin``'s signature to the update file at ``path`` (rewritten atomically, like ``peer channel
    signconfigtx``)."""
    data = _read(path)
    summary(data)
    signed = sign_update(data, admin).SerializeToString()
    write_atomic(path, signed)
    return summary(signed)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the update {path}: {exc.strerror or exc}") from exc


def submit(home: Path, path: Path, org: str, timeout: float = CONFIG_WAIT_S) -> int:
    """Submit the update at ``path`` as ``org``'s admin, adding its signature, to the orderer's Broadcast as
    ``peer channel update`` does; the number of the config block it made, once ``org``'s peer serves it.
    :class:`UpdateRefused` with the orderer's status and reason when refused."""
    data = _read(path)
    channel = summary(data).channel
    envelope = sign_update(data, admin_of(home, org))
    try:
        with _gateway(home, org) as gateway:
            network = gateway.network(channel)
            before, _ = _config_in_force(network)
            _broadcast(Profile.load(Layout(home.expanduser().resolve()).profile(org)), channel, envelope, timeout)

            def newer() -> int | None:
                number = _config_in_force(network)[0]
                return number if number != before else None

            number = wait_until(newer, timeout, poll=0.2)
            if number is None:
                raise NetworkError(f"channel {channel}: the update was accepted but no new config block came "
                                   f"within {timeout:.0f} s")
    except GatewayError as exc:
        raise NetworkError(f"cannot read channel {channel} through {org}'s peer: {exc}") from exc
    logger.info("channel %s: config block %d in force", channel, number)
    return number


def _broadcast(profile: Profile, channel: str, envelope: common_pb2.Envelope, timeout: float) -> None:
    """Send ``envelope`` to the first orderer of ``profile`` (AtomicBroadcast.Broadcast) and read its answer."""
    if not profile.orderers:
        raise InvalidInput(f"the connection profile of {profile.org} names no orderer")
    orderer = profile.orderers[0]
    credentials = grpc.ssl_channel_credentials(root_certificates=Path(orderer.tls_ca_cert).read_bytes())
    with grpc.secure_channel(orderer.endpoint, credentials) as connection:
        try:
            response = next(iter(AtomicBroadcastStub(connection).Broadcast(iter([envelope]), timeout=timeout)))
        except grpc.RpcError as exc:
            raise NetworkError(f"the orderer at {orderer.endpoint} did not answer: {exc.code().name}: "
                               f"{exc.details()}") from exc
    if response.status != common_pb2.SUCCESS:
        raise UpdateRefused(f"the orderer refused the update of channel {channel}: "
                            f"status={common_pb2.Status.Name(response.status)}, info={response.info}")
