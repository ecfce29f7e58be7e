"""One channel inside the engine: its definition (from its newest config block), ledger, MSPs,
access policies (``/Channel/Readers``, ``/Channel/Writers``, ``/Channel/Application/Readers`` of the config in
force), chaincode policy and orderer.

The chaincode is defined on the channel as on Fabric: by a ``_lifecycle`` ``CommitChaincodeDefinition``
transaction in block 1 (:meth:`Channel.define_chaincode`, :mod:`.lifecycle`), and blocks are validated with the
rules the ledger defines (``_lifecycle`` by LifecycleEndorsement, the chaincode by its committed definition).
The definition the channel was joined with is kept beside the ledger only until then, and to check that the
committed one is the same when the channel is reopened.

Broadcast is Fabric's orderer message processing (``orderer/common/broadcast``, ``msgprocessor``): a normal
transaction needs a creator that signed it and satisfies the channel's Writers; a CONFIG_UPDATE too, and then
the update must be authorised by the config in force (:mod:`~swarmfuse.network.protocol.configupdate`): the
orderer makes a CONFIG transaction of it, signed as the orderer, in a block of its own. Once that block is
committed, its config (MSPs, orgs, policies) is the channel's for the blocks after it, and a reopened channel
reads its config from the newest config block."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.peer import chaincode_event_pb2, transaction_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.embedded.events import block_chaincode_events
from swarmfuse.network.embedded.ledger import Ledger
from swarmfuse.network.embedded.orderer import BatchConfig, Orderer
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.configupdate import ConfigUpdateRefused, authorise_update, check_config_envelope
from swarmfuse.network.protocol.lifecycle import (
    CommittedDefinition,
    LifecycleRules,
    SigningIdentity,
    commit_transaction,
    committed_definition,
    config_policy,
)
from swarmfuse.network.protocol.model import ChaincodeDefinition, ChannelDefinition, OrgDefinition, TxResult
from swarmfuse.network.protocol.msp import ChannelMSPs, IdentityRejected, Principal
from swarmfuse.network.protocol.policy import Policy, parse
from swarmfuse.network.protocol.validator import BlockValidator

logger = logging.getLogger(__name__)

CHAINCODE_META = "chaincode_definition"
RECENT_EVENT_BLOCKS = 64
"""Blocks whose chaincode events a channel keeps parsed: every event stream waiting at the height reads a new
block's events from there instead of reading and parsing the block itself."""
BlockEvents = list[tuple[int, chaincode_event_pb2.ChaincodeEvent]]
VALID = transaction_pb2.TxValidationCode.VALID
WRITERS_REFUSAL = ("implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of "
                   "the 'Writers' sub-policies to be satisfied: permission denied")


class AccessDenied(SwarmfuseError):
    """The identity may not do this on the channel (Fabric answers FORBIDDEN / access denied)."""


class BroadcastRefused(SwarmfuseError):
    """The orderer refuses an envelope: Fabric's Broadcast status (``BAD_REQUEST``, ``FORBIDDEN``...) and info."""

    def __init__(self, status: str, info: str) -> None:
        super().__init__(f"status={status}, info={info}")
        self.status = status
        self.info = info


@dataclass(frozen=True)
class _InForce:
    """The channel config in force, with what validation and access read of it."""

    config: configtx_pb2.Config
    definition: ChannelDefinition
    msps: ChannelMSPs
    readers: Policy
    """``/Channel/Readers``: who may read blocks and commit statuses."""
    proposers: Policy
    """``/Channel/Application/Readers``: who may send proposals (the ``peer/Propose`` ACL of our channels)."""
    writers: Policy
    """``/Channel/Writers``: who may create a transaction."""
    rules: LifecycleRules
    validator: BlockValidator


class Channel:
    """A joined channel: reads for the gateway and deliver services, ordering for submits."""

    def __init__(self, definition: ChannelDefinition, ledger: Ledger, sign: Callable[[bytes], bytes],
                 orderer_identity: bytes) -> None:
        """``definition`` is the config of the channel's newest config block plus its chaincode."""
        if definition.chaincode is None:
            raise ValueError(f"channel {definition.name} has no chaincode definition")
        self.chaincode: ChaincodeDefinition = definition.chaincode
        self.ledger = ledger
        self._joined_policy = parse(definition.chaincode.endorsement_policy)
        self._sign = sign
        self._orderer_identity = orderer_identity
        self._in_force = self._read_config(newest_config_block(ledger))
        self._config_lock = threading.Lock()  # one config update at a time, from its proposal to its commit
        self._config_changed = threading.Condition()
        self._listeners: list[Callable[[common_pb2.Block, list[TxResult]], None]] = []
        self._listeners_lock = threading.Lock()
        self._recent_events: dict[int, BlockEvents] = {}
        self._recent_events_lock = threading.Lock()
        self.orderer = Orderer(definition.name, ledger, _batch(self.definition), self._validate_block, sign,
                               orderer_identity, self._committed)

    def _read_config(self, block: common_pb2.Block) -> _InForce:
        _, config = blockfmt.config_of_block(block)
        definition = replace(blockfmt.channel_from_config_block(block), chaincode=self.chaincode)
        msps = ChannelMSPs((*definition.orgs, definition.orderer_org))
        rules = LifecycleRules(config, definition.orgs, self.ledger)
        writers = config_policy(config, "/Channel/Writers")
        return _InForce(config, definition, msps, config_policy(config, "/Channel/Readers"),
                        config_policy(config, "/Channel/Application/Readers"), writers, rules,
                        BlockValidator(definition, msps, self.ledger, rules, lambda p: writers.satisfied_by([p])))

    @property
    def definition(self) -> ChannelDefinition:
        return self._in_force.definition

    @property
    def endorsement_policy(self) -> Policy:
        """The chaincode's endorsement policy in force: its committed definition's (a later one replaces it from
        the block after it), or the one the channel was joined with until block 1 commits it."""
        committed = self._in_force.rules.policy(self.chaincode.name)
        return self._joined_policy if committed is None else committed

    @property
    def msps(self) -> ChannelMSPs:
        return self._in_force.msps

    @property
    def config(self) -> configtx_pb2.Config:
        return self._in_force.config

    @property
    def rules(self) -> LifecycleRules:
        return self._in_force.rules

    @property
    def name(self) -> str:
        return self.definition.name

    def has_org(self, mspid: str) -> bool:
        return any(org.mspid == mspid for org in self.definition.orgs)

    @property
    def peer_orgs(self) -> tuple[OrgDefinition, ...]:
        return self.definition.orgs

    # --- access control -------------------------------------------------------------------------

    def principal(self, creator: bytes) -> Principal:
        try:
            return self.msps.identify(creator)
        except IdentityRejected as exc:
            raise AccessDenied(f"the creator is not a valid identity of channel {self.name}: {exc}") from exc

    def check_reader(self, creator: bytes) -> Principal:
        """A channel reader (any identity of the channel's orgs), or :class:`AccessDenied`."""
        principal = self.principal(creator)
        if not self._in_force.readers.satisfied_by([principal]):
            raise AccessDenied(f"{principal.mspid} {principal.role} does not satisfy the Readers policy of {self.name}")
        return principal

    def may_propose(self, principal: Principal) -> bool:
        """Whether ``principal`` satisfies ``/Channel/Application/Readers`` (the ``peer/Propose`` ACL)."""
        return self._in_force.proposers.satisfied_by([principal])

    def check_writer(self, creator: bytes, message: bytes, signature: bytes) -> Principal:
        """A signed message from a channel writer (Fabric's Broadcast check), or :class:`AccessDenied`."""
        principal = self.principal(creator)
        if not self.msps.verify(creator, message, signature):
            raise AccessDenied("the envelope's signature does not verify against its creator")
        if not self._in_force.writers.satisfied_by([principal]):
            raise AccessDenied(f"{principal.mspid} {principal.role} does not satisfy the Writers policy of {self.name}")
        return principal

    # --- Broadcast ------------------------------------------------------------------------------

    def broadcast(self, envelope: common_pb2.Envelope, timeout: float = 30.0) -> None:
        """Fabric's Broadcast of one envelope on this channel: accepted for ordering, or
        :class:`BroadcastRefused` with Fabric's status and info. A config update returns once its config block
        is committed (at most ``timeout`` seconds)."""
        try:
            payload = common_pb2.Payload.FromString(envelope.payload)
            channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
            signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        except DecodeError as exc:
            raise BroadcastRefused("BAD_REQUEST", f"bad header: {exc}") from exc
        if channel_header.channel_id != self.name:
            raise BroadcastRefused("BAD_REQUEST", "channel does not exist")
        if channel_header.type == common_pb2.CONFIG:
            raise BroadcastRefused("BAD_REQUEST", "message is of type that cannot be processed directly")
        if channel_header.type == common_pb2.ORDERER_TRANSACTION:
            raise BroadcastRefused("BAD_REQUEST", "message is of type that is no longer supported")
        if channel_header.type != common_pb2.CONFIG_UPDATE:
            self._check_broadcaster(envelope, signature_header, "")
            self._order(envelope.SerializeToString())
            return
        with self._config_lock:
            self._check_broadcaster(envelope, signature_header,
                                    "config update for existing channel did not pass initial checks: ")
            in_force = self._in_force
            try:
                authorised = authorise_update(in_force.config, self.name, envelope, in_force.msps)
            except ConfigUpdateRefused as exc:
                raise BroadcastRefused("BAD_REQUEST", f"error applying config update to existing channel "
                                                      f"'{self.name}': {exc}") from exc
            config = configtx_pb2.ConfigEnvelope(config=authorised.config, last_update=envelope)
            self._order(blockfmt.config_transaction(self.name, config, self._sign, self._orderer_identity),
                        isolated=True)
            logger.info("[%s] config update ordered: %s; signed by %s", self.name, ", ".join(authorised.changed),
                        ", ".join(f"{p.mspid} {p.role}" for p in authorised.signers))
            deadline = time.monotonic() + timeout
            with self._config_changed:
                while self._in_force is in_force:
                    left = deadline - time.monotonic()
                    if left <= 0 or self.orderer.halted is not None:
                        raise BroadcastRefused("SERVICE_UNAVAILABLE", f"the config block of {self.name} was not "
                                                                      f"committed within {timeout:.0f} s")
                    self._config_changed.wait(min(left, 0.5))

    def _check_broadcaster(self, envelope: common_pb2.Envelope, signature_header: common_pb2.SignatureHeader,
                           context: str) -> None:
        """Fabric's SigFilter: the creator signed the envelope and satisfies the channel's Writers."""
        try:
            self.check_writer(signature_header.creator, envelope.payload, envelope.signature)
        except AccessDenied as exc:
            logger.info("[%s] broadcast refused: %s", self.name, exc)
            raise BroadcastRefused("FORBIDDEN", context + WRITERS_REFUSAL) from exc

    def _order(self, envelope: bytes, isolated: bool = False) -> None:
        try:
            self.orderer.broadcast(envelope, isolated)
        except ValueError as exc:
            raise BroadcastRefused("BAD_REQUEST", str(exc)) from exc
        except RuntimeError as exc:
            raise BroadcastRefused("SERVICE_UNAVAILABLE", str(exc)) from exc

    # --- ordering and commits -------------------------------------------------------------------

    def _validate_block(self, envelopes: Sequence[bytes], number: int) -> list[TxResult]:
        """Validation under the config in force; a config block is checked as Fabric's peer checks it (its update
        authorised by the config in force and making its config) and has no writes."""
        in_force = self._in_force
        if number == 0 or not blockfmt.is_config_block(envelopes):
            return in_force.validator.validate_block(envelopes, number)
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(envelopes[0]).payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        check_config_envelope(in_force.config, self.name, configtx_pb2.ConfigEnvelope.FromString(payload.data),
                              in_force.msps)
        return [TxResult(tx_id=header.tx_id, index=0, code=VALID, timestamp_s=header.timestamp.seconds,
                         timestamp_nanos=header.timestamp.nanos)]

    def subscribe(self, listener: Callable[[common_pb2.Block, list[TxResult]], None]) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    def chaincode_events(self, number: int) -> BlockEvents | None:
        """``(transaction index, event)`` of the chaincode events in block ``number`` (see
        :func:`~swarmfuse.network.embedded.events.block_chaincode_events`); None while it is not committed. The
        last blocks' events are parsed once, by the first stream that asks, for every other stream."""
        height = self.ledger.height
        if number >= height - RECENT_EVENT_BLOCKS:
            with self._recent_events_lock:
                events = self._recent_events.get(number)
                if events is None:
                    block = self.ledger.block(number)
                    if block is None:
                        return None
                    events = self._recent_events[number] = block_chaincode_events(block)
                    for old in [n for n in self._recent_events if n < height - RECENT_EVENT_BLOCKS]:
                        del self._recent_events[old]
                return events
        block = self.ledger.block(number)
        return None if block is None else block_chaincode_events(block)

    def _committed(self, block: common_pb2.Block, results: list[TxResult]) -> None:
        if block.header.number > 0 and blockfmt.is_config_block(block.data.data):
            in_force = self._read_config(block)
            self.orderer.configure(_batch(in_force.definition))
            with self._config_changed:
                self._in_force = in_force
                self._config_changed.notify_all()
            logger.info("[%s] config block %d in force: orgs %s", self.name, block.header.number,
                        ", ".join(org.mspid for org in in_force.definition.orgs))
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(block, results)

    def start(self) -> None:
        self.orderer.start()

    def committed_chaincode(self) -> CommittedDefinition | None:
        """The chaincode's definition as committed on the ledger (``None`` before block 1 defines it)."""
        return committed_definition(self.ledger, self.chaincode.name, self.config)

    def define_chaincode(self, creator: SigningIdentity, endorsers: Sequence[SigningIdentity],
                         timeout: float = 30.0) -> None:
        """Commit the chaincode's definition through ``_lifecycle`` unless the ledger holds it: one
        ``CommitChaincodeDefinition`` transaction by ``creator`` (an org admin) endorsed by ``endorsers`` (the
        orgs' peers), ordered and validated as any other; ``ValueError`` when it is not committed VALID or the
        ledger holds another definition."""
        committed = self.committed_chaincode()
        if committed is None:
            self._commit_definition(commit_transaction(self.name, self.chaincode, creator, endorsers), timeout)
            committed = self.committed_chaincode()
        self._check_definition(committed)

    def redefine_chaincode(self, policy: str, creator: SigningIdentity, endorsers: Sequence[SigningIdentity],
                           timeout: float = 30.0) -> CommittedDefinition:
        """Commit the chaincode's next definition (sequence + 1, same version) with endorsement ``policy``, as
        ``peer lifecycle chaincode commit`` does after the orgs approved it: by ``creator`` (an org admin), endorsed
        by ``endorsers`` (enough peers for LifecycleEndorsement); the definition in force when it already has
        ``policy``. ``ValueError`` when the chaincode is not defined yet or the commit is not VALID."""
        committed = self.committed_chaincode()
        if committed is None:
            raise ValueError(f"channel {self.name}: chaincode {self.chaincode.name} is not defined yet")
        if committed.policy == parse(policy):
            return committed
        following = replace(self.chaincode, sequence=committed.sequence + 1, endorsement_policy=policy)
        self._commit_definition(commit_transaction(self.name, following, creator, endorsers, committed), timeout)
        redefined = self.committed_chaincode()
        assert redefined is not None
        return redefined

    def _commit_definition(self, envelope: bytes, timeout: float) -> None:
        """Order a ``_lifecycle`` commit and wait for it; ``ValueError`` unless it is committed VALID in time."""
        tx_id = common_pb2.ChannelHeader.FromString(common_pb2.Payload.FromString(
            common_pb2.Envelope.FromString(envelope).payload).header.channel_header).tx_id
        self.orderer.broadcast(envelope)
        deadline = time.monotonic() + timeout
        while True:
            height = self.ledger.height  # before the lookup: a block committed after it ends the wait below
            location = self.ledger.tx_location(tx_id)
            if location is not None:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not self.ledger.wait_for_height(height + 1, left):
                raise ValueError(f"channel {self.name}: the chaincode definition was not committed within "
                                 f"{timeout:.0f} s")
        if location.code != VALID:
            raise ValueError(f"channel {self.name}: the chaincode definition transaction {tx_id} was committed "
                             f"{transaction_pb2.TxValidationCode.Name(location.code)}")

    def _check_definition(self, committed: CommittedDefinition | None) -> None:
        """The committed definition is the one the channel was joined with, or a later one (its sequence higher:
        committed through ``_lifecycle`` since, as ``swarmfuse task define`` does)."""
        wanted = self.chaincode
        if committed is not None and committed.name == wanted.name and committed.sequence > wanted.sequence:
            return
        if committed is None or (committed.sequence, committed.version, committed.policy) != (
                wanted.sequence, wanted.version, self._joined_policy):
            found = "none" if committed is None else (f"sequence {committed.sequence}, version {committed.version}, "
                                                      f"policy {committed.policy}")
            raise ValueError(f"channel {self.name}: the ledger's definition of chaincode {wanted.name} ({found}) is "
                             f"not the one the channel was joined with (sequence {wanted.sequence}, version "
                             f"{wanted.version}, policy {self._joined_policy})")

    def stop(self) -> None:
        self.orderer.stop()
        self.ledger.close()


def create_ledger(path: Path, genesis: common_pb2.Block, chaincode: ChaincodeDefinition) -> Ledger:
    """A new channel ledger holding the genesis block and the chaincode definition."""
    ledger = Ledger.open(path)
    if ledger.height == 0:  # the definition first: a crash between the two leaves an empty ledger, made again
        ledger.meta_put(CHAINCODE_META, json.dumps(asdict(chaincode)).encode())
        block = common_pb2.Block()
        block.CopyFrom(genesis)
        blockfmt.set_transactions_filter(block, [VALID] * len(block.data.data))
        ledger.commit(block, [_config_result(envelope, index) for index, envelope in enumerate(block.data.data)])
    return ledger


def _config_result(envelope: bytes, index: int) -> TxResult:
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(envelope).payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    return TxResult(tx_id=header.tx_id, index=index, code=VALID,
                    timestamp_s=header.timestamp.seconds, timestamp_nanos=header.timestamp.nanos)


def _batch(definition: ChannelDefinition) -> BatchConfig:
    return BatchConfig(definition.batch_max_count, definition.batch_absolute_max_bytes,
                       definition.batch_preferred_max_bytes, definition.batch_timeout_s)


def newest_config_block(ledger: Ledger) -> common_pb2.Block:
    """The config block the ledger's newest block names in LAST_CONFIG (block 0 until a config update)."""
    tip = ledger.block(ledger.height - 1)
    config = ledger.block(blockfmt.last_config_index(tip)) if tip is not None else None
    if config is None:
        raise ValueError(f"channel ledger {ledger.path}: its newest block names no config block it holds")
    return config


def open_channel(path: Path, sign: Callable[[bytes], bytes], orderer_identity: bytes) -> Channel:
    """Reopen a channel from its ledger: definition from its newest config block, chaincode from the ledger's
    metadata. The ledger gets the quick check (numbering, savepoint, last block), so a start costs the same at any
    height; every block and the whole state are checked by ``Ledger.verify`` and, from the blocks, by ``audit verify``."""
    ledger = Ledger.open(path, full_check=False)
    meta = ledger.meta_get(CHAINCODE_META)
    if ledger.height == 0 or meta is None:
        ledger.close()
        raise ValueError(f"{path} holds no complete channel (genesis block or chaincode definition missing)")
    definition = blockfmt.channel_from_config_block(newest_config_block(ledger))
    chaincode = ChaincodeDefinition(**json.loads(meta))
    try:
        channel = Channel(replace(definition, chaincode=chaincode), ledger, sign, orderer_identity)
        committed = channel.committed_chaincode()
        if committed is not None:
            channel._check_definition(committed)
    except BaseException:
        ledger.close()
        raise
    return channel
