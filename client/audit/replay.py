"""Replay of a channel's blocks from genesis, checking each one as an independent peer of the channel would.

Per block: its number, the hash chain (``previous_hash`` = SHA-256 of the previous header's DER bytes), the
data hash, the orderer's signature(s) in SIGNATURES against ``/Channel/Orderer/BlockValidation`` of the
channel config in force, LAST_CONFIG, one TRANSACTIONS_FILTER code per envelope, and COMMIT_HASH recomputed
from the block's valid writes; a config block after the first only when the config in force authorised its
update (:func:`~.channel.config_update_problem`). Per transaction, through the project's Fabric validator
(:class:`~swarmfuse.network.protocol.validator.BlockValidator`) run over the replayed state with the
ledger's own rules in force at that block (:mod:`.channel`: its config's MSPs and ``/Channel/Writers``, the
``_lifecycle`` rules and the committed chaincode definition): the creator's certificate and signature, each
endorsement's, the endorsement policies (the chaincode's and each written key's own), duplicate tx IDs, MVCC
and phantom reads, and so the validation code to expect, which is compared with the recorded one; and that a
valid transaction writes no key recording another org's own act (``authorship``). The writes of the
transactions recorded VALID are then applied, as the peer applied them, so that the chaincode's current state
can be compared key by key with the replay.

Certificates are checked as valid at the newest transaction timestamp seen so far (never today's, and never
going back: a submitter chooses its timestamp).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.peer import transaction_pb2
from google.protobuf.message import DecodeError

from swarmfuse.chaincode.contracts.keys import owner_of
from swarmfuse.chaincode.stub import readable_key
from swarmfuse.client.audit.channel import BLOCK_VALIDATION, ChannelConfig, config_update_problem
from swarmfuse.client.audit.contributions import contribution_checks
from swarmfuse.client.audit.privacy import privacy_checks
from swarmfuse.client.audit.provenance import provenance_checks, split_extractor_checks
from swarmfuse.client.audit.report import Category, Check, Status
from swarmfuse.client.audit.signatures import confirmation_checks
from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.commithash import HashedUpdates, commit_hash, stored_commit_hash, update_batch_bytes
from swarmfuse.network.protocol.lifecycle import LIFECYCLE, ConfigError, committed_definition, field_key
from swarmfuse.network.protocol.model import HistoryEntry, TxLocation, Version, VersionedValue
from swarmfuse.network.protocol.msp import IdentityRejected, Principal
from swarmfuse.network.protocol.txops import BlockChanges
from swarmfuse.network.protocol.validator import BlockValidator, TxVerdict, transaction_rwset

logger = logging.getLogger(__name__)

VALID = transaction_pb2.VALID
Updates = dict[tuple[str, str], tuple[bytes | None, Version]]


def code_name(code: int) -> str:
    try:
        return transaction_pb2.TxValidationCode.Name(code)
    except ValueError:
        return f"code {code}"


def _who(principal: Principal) -> str:
    names = principal.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) if principal.cert else []
    return f"{principal.mspid} {principal.role}" + (f" ({names[0].value})" if names else "")


class ReplayState:
    """World state, key history, private data versions and the tx ID index, rebuilt from the blocks (a
    :class:`~swarmfuse.network.protocol.rules.LedgerView` for the validator)."""

    def __init__(self) -> None:
        self._values: dict[str, dict[str, VersionedValue]] = {}
        self._history: dict[tuple[str, str], list[HistoryEntry]] = {}
        self._hashed: dict[tuple[str, str, bytes], Version] = {}
        self._txs: dict[str, TxLocation] = {}
        self.duplicates: list[tuple[str, TxLocation, TxLocation]] = []

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        return self._values.get(namespace, {}).get(key)

    def get_state_range(self, namespace: str, start: str, end: str) -> Iterator[tuple[str, VersionedValue]]:
        values = self._values.get(namespace, {})
        keys = sorted(k for k in values if k >= start and (not end or k < end))  # code points sort as UTF-8 bytes
        return iter([(key, values[key]) for key in keys])

    def get_history(self, namespace: str, key: str) -> list[HistoryEntry]:
        return list(reversed(self._history.get((namespace, key), [])))

    def tx_location(self, tx_id: str) -> TxLocation | None:
        return self._txs.get(tx_id)

    def get_hashed_version(self, namespace: str, collection: str, key_hash: bytes) -> Version | None:
        return self._hashed.get((namespace, collection, key_hash))

    def namespace(self, namespace: str) -> dict[str, VersionedValue]:
        return dict(self._values.get(namespace, {}))

    def written(self, namespace: str) -> bool:
        """Whether a valid transaction wrote to ``namespace``."""
        return any(ns == namespace for ns, _ in self._history)

    def last_write(self, namespace: str, key: str) -> HistoryEntry | None:
        history = self._history.get((namespace, key))
        return history[-1] if history else None

    def index(self, tx_id: str, location: TxLocation) -> None:
        """Index a committed transaction (the first one with an ID keeps it); note valid duplicates."""
        first = self._txs.setdefault(tx_id, location)
        if first is not location and first.code == VALID and location.code == VALID:
            self.duplicates.append((tx_id, first, location))

    def apply(self, number: int, verdicts: list[TxVerdict], codes: list[int]) -> tuple[Updates, HashedUpdates]:
        """Apply the writes of the transactions recorded VALID (the last write of a key wins); the block's
        update batch, for its commit hash."""
        changes = BlockChanges(number, self)
        hashed: HashedUpdates = {}
        for verdict, code in zip(verdicts, codes, strict=False):
            if code != VALID:
                continue
            version = Version(number, verdict.index)
            for change in changes.apply(verdict.index, verdict.writes(), verdict.metadata_writes()):
                if change.value_write:
                    self._history.setdefault((change.namespace, change.key), []).append(HistoryEntry(
                        verdict.tx_id, change.value or b"", change.value is None, verdict.timestamp_s,
                        verdict.timestamp_nanos, version))
            for ns, collection, key_hash, value_hash in verdict.hashed_writes():
                hashed[(ns, collection, key_hash)] = (value_hash, version)
        for change in changes.latest.values():
            if change.value is None:
                self._values.get(change.namespace, {}).pop(change.key, None)
            else:
                self._values.setdefault(change.namespace, {})[change.key] = VersionedValue(
                    change.value, change.version, change.metadata)
        updates: Updates = changes.update_batch()
        for (ns, collection, key_hash), (value_hash, version) in hashed.items():
            if value_hash is None:
                self._hashed.pop((ns, collection, key_hash), None)
            else:
                self._hashed[(ns, collection, key_hash)] = version
        return updates, hashed


class _BlockClock:
    """The time certificates are checked at: the newest transaction timestamp seen so far, up to and
    including the block being replayed. It never goes back, so a transaction stamped in the past (a
    submitter chooses its timestamp; honest endorsers only keep it within their time window) cannot make an
    expired certificate valid again; until a block has a timestamp it is the time of the replay."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def advance(self, stamps: list[datetime]) -> None:
        if stamps:
            newest = max(stamps)
            self.now = newest if self.now is None else max(self.now, newest)

    def __call__(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


def _tx_id(block: common_pb2.Block) -> str | None:
    """The tx ID of a block's first envelope (a config block has one), ``None`` when it has none."""
    header = next(iter(_headers(block)), None)
    return header.tx_id or None if header is not None else None


def _headers(block: common_pb2.Block) -> list[common_pb2.ChannelHeader | None]:
    headers: list[common_pb2.ChannelHeader | None] = []
    for data in block.data.data:
        try:
            payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(data).payload)
            headers.append(common_pb2.ChannelHeader.FromString(payload.header.channel_header))
        except DecodeError:
            headers.append(None)
    return headers


class LedgerReplay:
    """Checks blocks handed to :meth:`add` in order from genesis; :meth:`final_checks` then checks what
    needs the whole ledger (unique tx IDs, the chaincode's definition, its state)."""

    def __init__(self, chaincode: str, genesis: common_pb2.Block | None = None, genesis_source: str = "") -> None:
        """``genesis``: the genesis block the channel was created from, when the auditor holds a copy (named by
        ``genesis_source``); block 0 is then checked against it, else block 0 is the unchecked trust anchor."""
        self.chaincode = chaincode
        self._genesis = genesis
        self._genesis_source = genesis_source or "the genesis block given"
        self.state = ReplayState()
        self.checks: list[Check] = []
        self.newest = -1
        self._config: ChannelConfig | None = None
        self._validator: BlockValidator | None = None
        self._previous: common_pb2.BlockHeader | None = None
        self._commit_hash = b""
        self._clock = _BlockClock()

    def _check(self, category: Category, name: str, subject: str, ok: bool | None, detail: str,
               block: int | None = None, tx_id: str | None = None, failed: Status = Status.FAIL) -> None:
        status = Status.SKIP if ok is None else Status.PASS if ok else failed
        self.checks.append(Check(category=category, name=name, subject=subject, status=status, detail=detail,
                                 block=block, tx_id=tx_id))

    # --- one block ------------------------------------------------------------------------------

    def add(self, block: common_pb2.Block) -> None:
        """Check the next block and apply its valid writes."""
        number = block.header.number
        headers = _headers(block)
        self._clock.advance([h.timestamp.ToDatetime(UTC) for h in headers if h is not None and h.HasField("timestamp")])
        if number != self.newest + 1:
            self._check(Category.BLOCKS, "block number", f"block {number}", False,
                        f"expected block {self.newest + 1} next, Deliver sent block {number}", number)
        self._hash_chain(block)
        self._data_hash(block)
        is_config = len(headers) == 1 and headers[0] is not None and headers[0].type == common_pb2.CONFIG
        new_config = self._read_config(block) if is_config else None
        self._orderer_signature(block, self._config or new_config)
        self._last_config(block, number if is_config else (self._config.block if self._config else 0))
        codes = blockfmt.transactions_filter(block)
        self._check(Category.BLOCKS, "transactions filter", f"block {number}", len(codes) == len(block.data.data),
                    f"{len(codes)} validation codes for {len(block.data.data)} envelopes", number)
        if is_config:
            verdicts = [TxVerdict(0, tx_id=headers[0].tx_id if headers[0] else "", header_type=common_pb2.CONFIG)]
            if new_config is not None:
                self._use_config(new_config)
        else:
            verdicts = self._transactions(block, codes)
        for verdict, code in zip(verdicts, codes, strict=False):
            if verdict.tx_id:
                self.state.index(verdict.tx_id, TxLocation(number, verdict.index, code))
        updates, hashed = self.state.apply(number, verdicts, codes)
        if number >= 1:
            self._commit_hash_check(block, codes, updates, hashed)
        self._previous = block.header
        self.newest = number

    def _transactions(self, block: common_pb2.Block, codes: list[int]) -> list[TxVerdict]:
        """Validate the block's transactions over the replayed state; check each against its recorded code."""
        number = block.header.number
        if self._validator is None:
            self._check(Category.TRANSACTIONS, "validation code", f"block {number}", None,
                        "no channel config before this block: its transactions cannot be validated", number)
            return []
        verdicts = self._validator.verdicts(block.data.data, number)
        for verdict, code, data in zip(verdicts, codes, block.data.data, strict=False):
            self._transaction_checks(number, verdict, code)
            if code == VALID and not verdict.rwset:  # validation stopped early; the peer applied the writes anyway
                verdict.rwset = transaction_rwset(data)
            if code == VALID:
                self._authorship_check(number, verdict)
        return verdicts

    def _data_hash(self, block: common_pb2.Block) -> None:
        ok = blockfmt.data_hash(block.data.data) == block.header.data_hash
        self._check(Category.BLOCKS, "data hash", f"block {block.header.number}", ok,
                    "SHA-256 of the envelopes matches the header's data_hash" if ok else
                    "SHA-256 of the envelopes does not match the header's data_hash: the block's data changed",
                    block.header.number)

    def _hash_chain(self, block: common_pb2.Block) -> None:
        number = block.header.number
        if self._previous is None:
            digest = blockfmt.header_hash(block.header).hex()
            if self._genesis is None:
                self._check(Category.BLOCKS, "hash chain", f"block {number}", True,
                            f"first block, header hash {digest}: the channel's trust anchor (compare it with the "
                            "genesis block the channel was created from)", number)
                return
            expected = blockfmt.header_hash(self._genesis.header).hex()
            ok = digest == expected and list(block.data.data) == list(self._genesis.data.data)
            self._check(Category.BLOCKS, "hash chain", f"block {number}", ok,
                        f"first block, header hash {digest}, is {self._genesis_source}" if ok else
                        f"first block, header hash {digest}, is not {self._genesis_source} (header hash {expected}"
                        + ("" if digest != expected else ", other envelopes") + ")", number)
            return
        expected = blockfmt.header_hash(self._previous)
        ok = block.header.previous_hash == expected
        self._check(Category.BLOCKS, "hash chain", f"block {number}", ok,
                    f"previous_hash is the header hash of block {self._previous.number}" if ok else
                    f"previous_hash {block.header.previous_hash.hex()} is not the header hash {expected.hex()} of "
                    f"block {self._previous.number}", number)

    def _read_config(self, block: common_pb2.Block) -> ChannelConfig | None:
        """The config a config block sets, once checked: block 0's is the channel's trust anchor, a later one
        must be an update the config in force authorised (otherwise it stays in force, and the failure names
        the block)."""
        number = block.header.number
        subject = f"block {number}"
        try:
            config = ChannelConfig.from_block(block, self._clock)
        except (ConfigError, blockfmt.ConfigBlockError) as exc:
            self._check(Category.BLOCKS, "channel config", subject, False, str(exc), number)
            return None
        if self._config is None:
            ok = number == 0
            self._check(Category.BLOCKS, "channel config", subject, ok, config.describe() if ok else
                        f"block {number} is the first config the replay reads; a channel's first config is block 0",
                        number)
            return config if ok else None
        if config.definition.name != self._config.definition.name:
            self._check(Category.BLOCKS, "channel config", subject, False,
                        f"a config of channel {config.definition.name!r} on channel {self._config.definition.name!r}; "
                        f"the config of block {self._config.block} stays in force", number)
            return None
        problem, authorised = config_update_problem(self._config, block)
        if problem is not None:
            self._check(Category.BLOCKS, "channel config", subject, False,
                        f"{problem}; the config of block {self._config.block} stays in force", number,
                        _tx_id(block))
            return None
        self._check(Category.BLOCKS, "channel config", subject, True, f"{config.describe()}; {authorised}", number,
                    _tx_id(block))
        return config

    def _use_config(self, config: ChannelConfig) -> None:
        self._config = config
        self._validator = BlockValidator(config.definition, config.msps, self.state,
                                         config.rules(self.state), config.is_writer)

    def _orderer_signature(self, block: common_pb2.Block, config: ChannelConfig | None) -> None:
        number = block.header.number
        subject = f"block {number}"
        if config is None:
            self._check(Category.BLOCKS, "orderer signature", subject, None, "no channel config to check it against",
                        number)
            return
        try:
            signatures = common_pb2.Metadata.FromString(block.metadata.metadata[blockfmt.SIGNATURES]).signatures
        except (DecodeError, IndexError) as exc:
            self._check(Category.BLOCKS, "orderer signature", subject, False, f"unreadable SIGNATURES metadata: {exc}",
                        number)
            return
        if not signatures:
            if number == 0:
                self._check(Category.BLOCKS, "orderer signature", subject, None,
                            "the genesis block carries no orderer signature (configtxgen writes none); it is the "
                            "trust anchor", number)
            else:
                self._check(Category.BLOCKS, "orderer signature", subject, False, "the block carries no signature",
                            number)
            return
        if any(item.identifier_header and not item.signature_header for item in signatures):
            self._check(Category.BLOCKS, "orderer signature", subject, None,
                        "BFT consenter signatures (identifier headers) are not checked by this tool", number)
            return
        signers: list[str] = []
        problems: list[str] = []

        def verify(creator: bytes, message: bytes, signature: bytes) -> bool:
            try:
                principal = config.msps.identify(creator)
            except IdentityRejected as exc:
                problems.append(f"invalid signer: {exc}")
                return False
            if not config.block_validation.satisfied_by([principal]):
                problems.append(f"{_who(principal)} does not satisfy {BLOCK_VALIDATION}")
                return False
            if not config.msps.check_signature(principal, message, signature):
                problems.append(f"the signature of {_who(principal)} does not verify")
                return False
            signers.append(_who(principal))
            return True

        ok = blockfmt.verify_block_signature(block, verify)
        self._check(Category.BLOCKS, "orderer signature", subject, ok,
                    f"signed by {', '.join(signers)}" + (f"; ignored: {'; '.join(problems)}" if problems else "")
                    if ok else "; ".join(problems) or "no signature verifies", number)

    def _last_config(self, block: common_pb2.Block, expected: int) -> None:
        number = block.header.number
        try:
            index: int | None = blockfmt.last_config_index(block)
        except (DecodeError, IndexError):
            index = None
        self._check(Category.BLOCKS, "last config", f"block {number}", index == expected,
                    f"LAST_CONFIG names block {index}" + ("" if index == expected else f", expected block {expected}"),
                    number)

    def _commit_hash_check(self, block: common_pb2.Block, codes: list[int], updates: Updates,
                           hashed: HashedUpdates) -> None:
        number = block.header.number
        expected = commit_hash(bytes(codes), update_batch_bytes(updates, hashed), self._commit_hash)
        stored = self._commit_hash = stored_commit_hash(block)  # each block is checked against its predecessor's
        ok = stored == expected
        self._check(Category.BLOCKS, "commit hash", f"block {number}", ok,
                    "COMMIT_HASH matches the block's valid writes and the previous block's commit hash" if ok else
                    f"COMMIT_HASH {stored.hex() or '(none)'} is not {expected.hex()}, the hash of the block's valid "
                    "writes and the previous block's commit hash", number)

    # --- one transaction ------------------------------------------------------------------------

    def _transaction_checks(self, number: int, verdict: TxVerdict, recorded: int) -> None:
        subject = f"block {number} tx {verdict.index}"
        tx_id = verdict.tx_id or None
        failed = Status.FAIL if recorded == VALID else Status.INFO
        note = "" if recorded == VALID else f" (the transaction is recorded {code_name(recorded)})"
        creator = verdict.creator
        self._check(Category.TRANSACTIONS, "creator", subject, creator is not None,
                    (f"{_who(creator)}: certificate chains to its MSP, signature over the payload valid, satisfies "
                     "the channel's Writers" if creator is not None else f"{verdict.reason}{note}"),
                    number, tx_id, failed)
        if verdict.header_type == common_pb2.ENDORSER_TRANSACTION:
            self._endorsement_check(number, subject, verdict, tx_id, failed, note)
        expected = verdict.code
        self._check(Category.TRANSACTIONS, "validation code", subject, expected == recorded,
                    (code_name(recorded) + (f": {verdict.reason}" if verdict.reason else "")) if expected == recorded
                    else f"recorded {code_name(recorded)}, the replay gives {code_name(expected)}"
                         + (f": {verdict.reason}" if verdict.reason else ""), number, tx_id)

    def _endorsement_check(self, number: int, subject: str, verdict: TxVerdict, tx_id: str | None, failed: Status,
                           note: str) -> None:
        endorsers = [f"{e.mspid or '?'}.{e.role or '?'} " + ("valid" if e.counted else f"not counted: {e.reason}")
                     for e in verdict.endorsements]
        policies = [f"{p.scope}: {p.policy} {'satisfied' if p.satisfied else 'NOT satisfied'}"
                    for p in verdict.policies]
        if not verdict.policies:
            ok, detail = False, f"not checked: {verdict.reason}{note}"
        else:
            bad = [e for e in verdict.endorsements if not e.counted and e.reason != "the same endorser twice"]
            ok = not bad and all(p.satisfied for p in verdict.policies)
            detail = "; ".join(endorsers + policies) + ("" if ok else note)
        self._check(Category.TRANSACTIONS, "endorsements", subject, ok, detail, number, tx_id, failed)

    def _authorship_check(self, number: int, verdict: TxVerdict) -> None:
        """A key recording one org's own act (``keys.owner_of``) may be written only by a creator of that org:
        Fabric judges a new key by the chaincode's majority alone, so this is where a majority writing in
        another org's name shows."""
        written = sorted({key for ns, kv, _ in verdict.rwset if ns == self.chaincode
                          for key in [*(w.key for w in kv.writes), *(w.key for w in kv.metadata_writes)]})
        owned = [(key, owner) for key in written if (owner := owner_of(key)) is not None]
        if not owned or verdict.creator is None:
            return
        creator = verdict.creator.mspid
        foreign = [f"{readable_key(key)} (an act of {owner})" for key, owner in owned if owner != creator]
        detail = (f"{creator} wrote " + ", ".join(foreign) if foreign else
                  f"every act it records is its creator's own ({creator}: "
                  + ", ".join(readable_key(key) for key, _ in owned) + ")")
        self._check(Category.TRANSACTIONS, "authorship", f"block {number} tx {verdict.index}", not foreign, detail,
                    number, verdict.tx_id or None)

    # --- the whole ledger -----------------------------------------------------------------------

    def final_checks(self, digest: dict[str, str] | None, why_no_digest: str = "") -> None:
        """Unique tx IDs, the chaincode's definition, its state (``digest``: key -> SHA-256 of the value the
        chaincode's state holds; ``None`` when it could not be read, ``why_no_digest`` saying why), the founders'
        own confirmations behind the task and the agreements (:mod:`.signatures`), each round's contributions
        recomputed from its table (:mod:`.contributions`), the ε of every DP release and budget (:mod:`.privacy`),
        whose labels shaped each summary's extractor and, after split learning, which extractor made each feature
        site's final features (:mod:`.provenance`)."""
        self._unique_tx_ids()
        self._definition_check()
        if digest is None:
            self._check(Category.STATE, "state", f"chaincode {self.chaincode}", None, why_no_digest)
        else:
            self._state_checks(digest)
        state = {key: value.value for key, value in self.state.namespace(self.chaincode).items()}
        self.checks += (confirmation_checks(state) + contribution_checks(state) + privacy_checks(state)
                        + provenance_checks(state) + split_extractor_checks(state))

    def _unique_tx_ids(self) -> None:
        duplicates = self.state.duplicates
        self._check(Category.TRANSACTIONS, "unique tx IDs", f"blocks 0..{self.newest}", not duplicates,
                    "no two valid transactions share an ID" if not duplicates else "; ".join(
                        f"{tx_id} is valid in block {a.block} tx {a.index} and block {b.block} tx {b.index}"
                        for tx_id, a, b in duplicates))

    def _definition_check(self) -> None:
        """The chaincode's definition committed through ``_lifecycle``: its policy must be the task's rule."""
        subject = f"chaincode {self.chaincode}"
        if self._config is None:
            self._check(Category.STATE, "chaincode definition", subject, None, "no channel config was read")
            return
        task_policy = self._config.task_policy()
        try:
            definition = committed_definition(self.state, self.chaincode, self._config.config)
        except ConfigError as exc:
            self._check(Category.STATE, "chaincode definition", subject, False, str(exc))
            return
        if definition is None:
            used = self.state.written(self.chaincode)
            self._check(Category.STATE, "chaincode definition", subject, False if used else None,
                        "the ledger holds no committed definition of the chaincode (no _lifecycle "
                        "CommitChaincodeDefinition)" + ("; yet valid transactions wrote to it" if used else
                                                        " and no transaction wrote to it"))
            return
        last = self.state.last_write(LIFECYCLE, field_key(self.chaincode, "ValidationInfo"))
        ok = definition.policy == task_policy
        self._check(Category.STATE, "chaincode definition", subject, ok,
                    f"committed through {LIFECYCLE}: sequence {definition.sequence}, version {definition.version}, "
                    f"endorsement policy {definition.policy}"
                    + (" (the task's rule)" if ok else f", not the task's rule {task_policy}"),
                    definition.written_at.block, last.tx_id if last else None)

    def _state_checks(self, digest: dict[str, str]) -> None:
        replayed = {key: hashlib.sha256(value.value).hexdigest()
                    for key, value in self.state.namespace(self.chaincode).items()}
        for key in sorted(replayed.keys() | digest.keys()):
            expected, actual = replayed.get(key), digest.get(key)
            last = self.state.last_write(self.chaincode, key)
            where = (f"tx {last.tx_id} (block {last.version.block} tx {last.version.tx})" if last is not None
                     else "no valid transaction")
            if expected == actual:
                detail = f"SHA-256 {actual}, as written by {where}"
            elif actual is None:
                detail = (f"missing from the state; its last valid write, {where}, stored a value with SHA-256 "
                          f"{expected}")
            elif expected is None:
                detail = (f"the state holds a value with SHA-256 {actual} but "
                          + ("no valid transaction wrote the key" if last is None else f"{where} deleted it"))
            else:
                detail = (f"the state holds a value with SHA-256 {actual}; its last valid write, {where}, stored "
                          f"one with SHA-256 {expected}")
            self._check(Category.STATE, "state value", f"key {readable_key(key)}", expected == actual, detail,
                        last.version.block if last else None, last.tx_id if last else None)
