"""Block validation as Fabric's committing peer does it, with Fabric's transaction validation codes (a peer's
proposal checks before endorsing are in :mod:`.proposals`).

Block validation runs Fabric's three stages in order:

1. per transaction, as ``core/committer/txvalidator/v20``: envelope, headers, creator and its signature
   (``core/common/validation/msgvalidation.go``), tx ID, proposal hash, duplicate of a committed tx,
   then the chaincode checks and endorsement policy (``plugindispatcher`` + builtin ``v20`` VSCC);
2. a tx ID already used by an earlier VALID transaction of the block becomes DUPLICATE_TXID;
3. for what is still VALID, MVCC and phantom checks against committed state plus the writes of the
   earlier valid transactions of the block (``core/ledger/kvledger/txmgmt/validation``).

Also checked here, where Fabric's orderer checks it on Broadcast: the creator must satisfy the channel's
Writers policy (BAD_CREATOR_SIGNATURE otherwise), and its certificate must not have expired.

Which namespaces and collections are defined, and their endorsement policies, come from
:class:`~.rules.NamespaceRules`: the engine's channel has one chaincode and no collections
(:class:`~.rules.ChaincodeRules`); ``audit verify`` replays a Fabric ledger with Fabric's lifecycle rules. Besides the
codes, :meth:`BlockValidator.verdicts` tells what each check found (creator, each endorsement, each policy).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf.message import DecodeError

from swarmfuse.network.protocol.identity import transaction_id
from swarmfuse.network.protocol.model import ChannelDefinition, TxResult, Version, VersionedValue
from swarmfuse.network.protocol.msp import ChannelMSPs, IdentityRejected, Principal
from swarmfuse.network.protocol.policy import Policy, PolicyError
from swarmfuse.network.protocol.proposals import hash_parts, header_type_name
from swarmfuse.network.protocol.rules import ChaincodeRules, LedgerView, NamespaceRules, channel_writers
from swarmfuse.network.protocol.txops import VALIDATION_PARAMETER, BlockChanges, decode_metadata, encode_metadata

logger = logging.getLogger(__name__)

Code = transaction_pb2.TxValidationCode
VALID = transaction_pb2.VALID


# --- the committer side --------------------------------------------------------------------------

class _Invalid(Exception):
    """A transaction found invalid, with its code and why."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


NsRWSet = tuple[str, kv_rwset_pb2.KVRWSet, list[tuple[str, kv_rwset_pb2.HashedRWSet]]]


@dataclass(frozen=True)
class EndorsementCheck:
    """One endorsement of a transaction: who signed it (when identified) and whether it counted."""

    index: int
    mspid: str | None
    role: str | None
    counted: bool
    reason: str = ""


@dataclass(frozen=True)
class PolicyCheck:
    """One endorsement policy evaluated over a transaction's counted endorsers."""

    scope: str
    policy: str
    satisfied: bool


@dataclass
class TxVerdict:
    """One envelope of a block as validation understood it: its code, why it is invalid (``reason``), and
    what each check found. ``creator`` is set once the creator passed its checks; ``rwset`` once the
    read-write set parsed (kept for invalid transactions too)."""

    index: int
    code: int = VALID
    reason: str = ""
    tx_id: str = ""
    header_type: int | None = None
    timestamp_s: int = 0
    timestamp_nanos: int = 0
    creator: Principal | None = None
    endorsements: list[EndorsementCheck] = field(default_factory=list)
    policies: list[PolicyCheck] = field(default_factory=list)
    rwset: list[NsRWSet] = field(default_factory=list)

    def writes(self) -> list[tuple[str, str, bytes | None]]:
        """(namespace, key, value) per public write of the read-write set, ``None`` for a delete."""
        return _writes(self.rwset)

    def metadata_writes(self) -> list[tuple[str, str, bytes]]:
        """(namespace, key, encoded metadata) per public metadata write (``b""``: the metadata is removed)."""
        return [(ns, w.key, encode_metadata({e.name: e.value for e in w.entries}))
                for ns, kv, _ in self.rwset for w in kv.metadata_writes]

    def hashed_writes(self) -> list[tuple[str, str, bytes, bytes | None]]:
        """(namespace, collection, key hash, value hash) per private data write, ``None`` for a delete."""
        return [(ns, coll, w.key_hash, None if w.is_delete or not w.value_hash else w.value_hash)
                for ns, _, collections in self.rwset for coll, hashed in collections for w in hashed.hashed_writes]


def _parse(message_type: type, data: bytes, code: int, what: str):  # type: ignore[no-untyped-def]
    try:
        return message_type.FromString(data)
    except DecodeError as exc:
        raise _Invalid(code, f"error unmarshalling {what}: {exc}") from exc


class BlockValidator:
    """Validates the envelopes of a channel's blocks as a Fabric peer of the channel does."""

    def __init__(self, channel: ChannelDefinition, msps: ChannelMSPs, ledger: LedgerView,
                 rules: NamespaceRules | None = None, writers: Callable[[Principal], bool] | None = None) -> None:
        """``rules`` default to the channel's one chaincode; ``writers`` (who may create a transaction, the
        channel's ``/Channel/Writers``) to the org policies ``network/configtx.py`` writes."""
        self._channel = channel
        self._msps = msps
        self._ledger = ledger
        self._rules: NamespaceRules = rules if rules is not None else ChaincodeRules.of(channel)
        self._writers = writers if writers is not None else (lambda principal: channel_writers(channel, principal))

    def validate_block(self, envelopes: Sequence[bytes], number: int) -> list[TxResult]:
        """The result of every envelope of block ``number``, in block order (writes for VALID ones)."""
        return self.validate(envelopes, number)

    def validate(self, envelopes: Sequence[bytes], number: int | None = None) -> list[TxResult]:
        """The result of every envelope of the next block (``number`` defaults to the ledger height)."""
        return [
            TxResult(
                tx_id=tx.tx_id, index=tx.index, code=tx.code,
                writes=tx.writes() if tx.code == VALID else (),
                metadata_writes=tx.metadata_writes() if tx.code == VALID else (),
                timestamp_s=tx.timestamp_s, timestamp_nanos=tx.timestamp_nanos,
            )
            for tx in self.verdicts(envelopes, number)
        ]

    def verdicts(self, envelopes: Sequence[bytes], number: int | None = None) -> list[TxVerdict]:
        """What validation found for every envelope of the next block (``number`` defaults to the ledger
        height): its code and each check's outcome."""
        if number is None:
            number = int(getattr(self._ledger, "height", 0))
        changed_policies: dict[tuple[str, str], int] = {}
        txs = [self._check(index, data, number, changed_policies) for index, data in enumerate(envelopes)]
        seen: set[str] = set()
        for tx in txs:  # Fabric's markTXIdDuplicates: among the txs still VALID, the first one keeps its tx ID
            if tx.code != VALID or not tx.tx_id:
                continue
            if tx.tx_id in seen:
                logger.warning("block %d tx %d: duplicate tx ID %s in the block", number, tx.index, tx.tx_id)
                tx.code = transaction_pb2.DUPLICATE_TXID
                tx.reason = f"tx ID {tx.tx_id} is used by an earlier valid transaction of the block"
            seen.add(tx.tx_id)
        _StateCheck(self._ledger, number).run(txs)
        return txs

    # --- stage 1: one transaction ----------------------------------------------------------------

    def _check(self, index: int, data: bytes, number: int, changed_policies: dict[tuple[str, str], int]) -> TxVerdict:
        """Judge one envelope. ``changed_policies`` maps each key whose metadata an earlier transaction of the
        block wrote, having passed its endorsement policies, to that transaction's index (this one's metadata
        writes are added when it passes)."""
        tx = TxVerdict(index)
        try:
            self._check_envelope(tx, data, number, changed_policies)
        except _Invalid as exc:
            tx.code = exc.code
            tx.reason = str(exc)
            logger.warning("block %d tx %d (%s) invalid: %s: %s", number, index, tx.tx_id[:8] or "-",
                           Code.Name(exc.code), exc)
        except Exception as exc:  # whatever one transaction holds, judging it fails that transaction, not the block
            tx.code = transaction_pb2.INVALID_OTHER_REASON
            tx.reason = f"the transaction could not be judged: {exc!r}"
            logger.exception("block %d tx %d (%s) invalid: could not be judged", number, index, tx.tx_id[:8] or "-")
        return tx

    def _check_envelope(self, tx: TxVerdict, data: bytes, number: int,
                        changed_policies: dict[tuple[str, str], int]) -> None:
        if not data:
            raise _Invalid(transaction_pb2.NIL_ENVELOPE, "empty envelope")
        envelope = _parse(common_pb2.Envelope, data, transaction_pb2.INVALID_OTHER_REASON, "Envelope")
        payload = _parse(common_pb2.Payload, envelope.payload, transaction_pb2.BAD_PAYLOAD, "Payload")
        chdr, shdr = self._common_header(payload)
        tx.tx_id = chdr.tx_id
        tx.header_type = chdr.type
        tx.timestamp_s, tx.timestamp_nanos = chdr.timestamp.seconds, chdr.timestamp.nanos
        if chdr.type == common_pb2.CONFIG:
            if number != 0:  # a config block after the genesis block is judged against the config in force
                # (network/protocol/configupdate.py), never here: a CONFIG envelope here shares its block
                raise _Invalid(transaction_pb2.INVALID_CONFIG_TRANSACTION, "a config transaction must be alone in "
                                                                           "its block")
            if not payload.data:
                raise _Invalid(transaction_pb2.INVALID_CONFIG_TRANSACTION, "config transaction without data")
            return
        tx.creator = self._check_creator(envelope, chdr, shdr)
        if chdr.type != common_pb2.ENDORSER_TRANSACTION:
            raise _Invalid(transaction_pb2.UNSUPPORTED_TX_PAYLOAD, f"unsupported type {header_type_name(chdr.type)}")
        if chdr.tx_id != transaction_id(shdr.nonce, shdr.creator):
            raise _Invalid(transaction_pb2.BAD_PROPOSAL_TXID,
                           f"tx ID {chdr.tx_id!r} is not hex(sha256(nonce ‖ creator))")
        endorsed = self._endorser_transaction(payload)
        if chdr.channel_id != self._channel.name:
            raise _Invalid(transaction_pb2.TARGET_CHAIN_NOT_FOUND, f"transaction for channel {chdr.channel_id!r}")
        if self._ledger.tx_location(chdr.tx_id) is not None:
            raise _Invalid(transaction_pb2.DUPLICATE_TXID, f"tx ID {chdr.tx_id} is already committed")
        self._dispatch(tx, chdr, endorsed, number, changed_policies)

    @staticmethod
    def _common_header(payload: common_pb2.Payload) -> tuple[common_pb2.ChannelHeader, common_pb2.SignatureHeader]:
        bad = transaction_pb2.BAD_COMMON_HEADER
        if not payload.HasField("header"):
            raise _Invalid(bad, "nil header")
        chdr = _parse(common_pb2.ChannelHeader, payload.header.channel_header, bad, "ChannelHeader")
        shdr = _parse(common_pb2.SignatureHeader, payload.header.signature_header, bad, "SignatureHeader")
        if chdr.type not in (common_pb2.ENDORSER_TRANSACTION, common_pb2.CONFIG_UPDATE, common_pb2.CONFIG):
            raise _Invalid(bad, f"invalid header type {header_type_name(chdr.type)}")
        if chdr.epoch != 0:
            raise _Invalid(bad, f"invalid Epoch in ChannelHeader. Expected 0, got [{chdr.epoch}]")
        if not shdr.nonce:
            raise _Invalid(bad, "invalid nonce specified in the header")
        if not shdr.creator:
            raise _Invalid(bad, "invalid creator specified in the header")
        return chdr, shdr

    def _check_creator(self, envelope: common_pb2.Envelope, chdr: common_pb2.ChannelHeader,
                       shdr: common_pb2.SignatureHeader) -> Principal:
        bad = transaction_pb2.BAD_CREATOR_SIGNATURE
        if not envelope.signature:
            raise _Invalid(bad, "the envelope has no signature")
        try:
            principal = self._msps.identify(shdr.creator)
        except IdentityRejected as exc:
            raise _Invalid(bad, f"creator is not valid: {exc}") from exc
        if not self._msps.check_signature(principal, envelope.payload, envelope.signature):
            raise _Invalid(bad, "the creator's signature over the envelope payload is not valid")
        if not self._writers(principal):
            raise _Invalid(bad, f"the creator ({principal.mspid} {principal.role}) does not satisfy the channel's "
                                "Writers policy")
        return principal

    @staticmethod
    def _endorser_transaction(payload: common_pb2.Payload) -> transaction_pb2.ChaincodeEndorsedAction:
        """Fabric's ``validateEndorserTransaction``: one action whose proposal hash binds header and payload;
        the action's endorsed part."""
        bad = transaction_pb2.INVALID_ENDORSER_TRANSACTION
        transaction = _parse(transaction_pb2.Transaction, payload.data, bad, "Transaction")
        if len(transaction.actions) != 1:
            raise _Invalid(bad, f"only one action per transaction is supported, tx contains {len(transaction.actions)}")
        action = transaction.actions[0]
        action_header = _parse(common_pb2.SignatureHeader, action.header, bad, "action SignatureHeader")
        if not action_header.nonce or not action_header.creator:
            raise _Invalid(bad, "invalid nonce or creator in the action's signature header")
        action_payload = _parse(transaction_pb2.ChaincodeActionPayload, action.payload, bad, "ChaincodeActionPayload")
        response_payload = _parse(proposal_response_pb2.ProposalResponsePayload,
                                  action_payload.action.proposal_response_payload, bad, "ProposalResponsePayload")
        expected = hash_parts(payload.header.channel_header, action.header, action_payload.chaincode_proposal_payload)
        if response_payload.proposal_hash != expected:
            raise _Invalid(bad, "proposal hash does not match")
        return action_payload.action

    def _dispatch(self, tx: TxVerdict, chdr: common_pb2.ChannelHeader, endorsed: transaction_pb2.ChaincodeEndorsedAction,
                  number: int, changed_policies: dict[tuple[str, str], int]) -> None:
        """Fabric's plugin dispatcher and default VSCC: chaincode identity, namespaces written, policies."""
        extension = _parse(proposal_pb2.ChaincodeHeaderExtension, chdr.extension,
                           transaction_pb2.BAD_HEADER_EXTENSION, "ChaincodeHeaderExtension")
        bad_response = transaction_pb2.BAD_RESPONSE_PAYLOAD
        if not endorsed.proposal_response_payload:
            raise _Invalid(bad_response, "no payload in ChaincodeActionPayload")
        response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(endorsed.proposal_response_payload)
        if not response_payload.extension:
            raise _Invalid(bad_response, "response payload is missing extension")
        chaincode_action = _parse(proposal_pb2.ChaincodeAction, response_payload.extension, bad_response,
                                  "ChaincodeAction")
        rwset = tx.rwset = _read_write_set(chaincode_action.results)
        if not extension.HasField("chaincode_id"):
            raise _Invalid(transaction_pb2.INVALID_OTHER_REASON, "nil ChaincodeId in header extension")
        if not chaincode_action.HasField("chaincode_id"):
            raise _Invalid(transaction_pb2.INVALID_OTHER_REASON, "nil ChaincodeId in ChaincodeAction")
        name = extension.chaincode_id.name
        bad_chaincode = transaction_pb2.INVALID_CHAINCODE
        if not name:
            raise _Invalid(bad_chaincode, "invalid chaincode ID")
        if name != chaincode_action.chaincode_id.name:
            raise _Invalid(bad_chaincode, f"inconsistent ccid info ({name}/{chaincode_action.chaincode_id.name})")
        if not chaincode_action.chaincode_id.version:
            raise _Invalid(bad_chaincode, "invalid chaincode version")
        if chaincode_action.events:
            event = _parse(chaincode_event_pb2.ChaincodeEvent, chaincode_action.events,
                           transaction_pb2.INVALID_OTHER_REASON, "chaincode event")
            if event.chaincode_id != name:
                raise _Invalid(transaction_pb2.INVALID_OTHER_REASON,
                               "chaincode event chaincode id does not match chaincode action chaincode id")
        namespaces: set[str] = set()
        written = [name]
        for ns, kv, collections in rwset:
            if ns in namespaces:
                raise _Invalid(transaction_pb2.ILLEGAL_WRITESET, f"duplicate namespace '{ns}' in txRWSet")
            namespaces.add(ns)
            writes_collection = any(c.hashed_writes or c.metadata_writes for _, c in collections)
            if (kv.writes or kv.metadata_writes or writes_collection) and ns not in written:
                written.append(ns)
        for ns in written:
            if self._rules.policy(ns) is None:
                raise _Invalid(bad_chaincode, f"no chaincode definition for namespace '{ns}' on channel "
                                              f"{self._channel.name}")
        for ns, _, collections in rwset:
            for collection, _ in collections:
                if self._rules.collection_policy(ns, collection) is None:
                    raise _Invalid(transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
                                   f"collection {collection} of chaincode {ns} is not defined")
        signers = self._endorsers(tx, endorsed)
        for ns in written:
            entry = next((entry for entry in rwset if entry[0] == ns), None)
            _KeyLevelCheck(self._rules, self._ledger, tx, ns, signers, number, changed_policies).run(entry)
        for ns, kv, _ in rwset:
            for write in kv.metadata_writes:
                changed_policies.setdefault((ns, write.key), tx.index)

    def _endorsers(self, tx: TxVerdict, endorsed: transaction_pb2.ChaincodeEndorsedAction) -> list[Principal]:
        """The endorsers whose signature over the proposal response payload ‖ endorser is valid (Fabric's
        ``SignatureSetToValidIdentities``), each once; every endorsement's outcome goes to ``tx``."""
        signers: list[Principal] = []
        for index, endorsement in enumerate(endorsed.endorsements):
            try:
                principal = self._msps.identify(endorsement.endorser)
            except IdentityRejected as exc:
                logger.warning("endorsement ignored, invalid endorser: %s", exc)
                tx.endorsements.append(EndorsementCheck(index, exc.mspid, None, False, f"invalid endorser: {exc}"))
                continue
            if principal.key in {s.key for s in signers}:
                tx.endorsements.append(EndorsementCheck(index, principal.mspid, principal.role, False,
                                                        "the same endorser twice"))
                continue
            message = endorsed.proposal_response_payload + endorsement.endorser
            if not self._msps.check_signature(principal, message, endorsement.signature):
                logger.warning("endorsement of %s ignored: its signature is not valid", principal.mspid)
                tx.endorsements.append(EndorsementCheck(index, principal.mspid, principal.role, False,
                                                        "the signature over the proposal response is not valid"))
                continue
            tx.endorsements.append(EndorsementCheck(index, principal.mspid, principal.role, True))
            signers.append(principal)
        return signers


class _KeyLevelCheck:
    """Fabric's v20 key-level endorsement evaluator (core/common/validation/statebased) for one namespace of
    one transaction: every written key (value or metadata) is judged by its own endorsement policy (the
    ``VALIDATION_PARAMETER`` of its committed metadata) when it has one, else by the chaincode's, checked
    once; each written collection by its policy; the chaincode's policy when nothing else was checked.

    A key whose policy an earlier transaction of the same block changed (and that passed its policies)
    fails the transaction (Fabric's ``ValidationParameterUpdatedError``). A policy that does not parse
    fails it too, where Fabric's peer would stop processing the channel."""

    def __init__(self, rules: NamespaceRules, ledger: LedgerView, tx: TxVerdict, ns: str, signers: list[Principal],
                 number: int, changed_policies: dict[tuple[str, str], int]) -> None:
        self._rules = rules
        self._ledger = ledger
        self._tx = tx
        self._ns = ns
        self._signers = signers
        self._number = number
        self._changed = changed_policies
        self._chaincode_checked = False
        self._other_checked = False

    def run(self, entry: NsRWSet | None) -> None:
        if entry is not None:
            _, kv, collections = entry
            for key in [w.key for w in kv.writes] + [w.key for w in kv.metadata_writes]:
                policy = self._key_policy(key)
                if policy is None:
                    self._chaincode_policy()
                else:
                    self._require(f"key {_readable(key)} of {self._ns}", policy)
                    self._other_checked = True
            for collection, hashed in collections:
                if hashed.hashed_writes or hashed.metadata_writes:
                    collection_policy = self._rules.collection_policy(self._ns, collection)
                    assert collection_policy is not None  # checked by the dispatcher
                    self._require(f"collection {collection} of {self._ns}", collection_policy)
                    self._other_checked = True
        if not self._other_checked:
            self._chaincode_policy()

    def _chaincode_policy(self) -> None:
        if not self._chaincode_checked:
            policy = self._rules.policy(self._ns)
            assert policy is not None  # checked by the dispatcher
            self._require(f"chaincode {self._ns}", policy)
            self._chaincode_checked = True

    def _key_policy(self, key: str) -> Policy | None:
        changed_by = self._changed.get((self._ns, key))
        if changed_by is not None:
            raise _Invalid(transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
                           f"validation parameter for key [{self._ns}:{_readable(key)}] has been changed by "
                           f"transaction {changed_by} of block {self._number}")
        current = self._ledger.get_state(self._ns, key)
        parameter = decode_metadata(current.metadata).get(VALIDATION_PARAMETER) if current is not None else None
        if not parameter:
            return None
        try:
            return Policy.from_envelope(parameter)
        except PolicyError as exc:
            raise _Invalid(transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
                           f"could not translate policy for {self._ns}:{_readable(key)}: {exc}") from exc

    def _require(self, scope: str, rule: Policy) -> None:
        satisfied = rule.satisfied_by(self._signers)
        self._tx.policies.append(PolicyCheck(scope, str(rule), satisfied))
        if not satisfied:
            endorsers = ", ".join(f"{p.mspid}.{p.role}" for p in self._signers) or "none"
            raise _Invalid(transaction_pb2.ENDORSEMENT_POLICY_FAILURE,
                           f"signature set did not satisfy policy {rule} of {scope} (valid endorsers: {endorsers})")


def _readable(key: str) -> str:
    """A state key for messages: composite keys' U+0000 separators shown as ``/``."""
    return key.strip("\x00").replace("\x00", "/") if key.startswith("\x00") else key


def _read_write_set(results: bytes) -> list[NsRWSet]:
    """Fabric's ``TxRwSet.FromProtoBytes``: every namespace's KV set and collection hashed sets parsed."""
    bad = transaction_pb2.BAD_RWSET
    tx_rwset = _parse(rwset_pb2.TxReadWriteSet, results, bad, "TxReadWriteSet")
    parsed = []
    for ns_rwset in tx_rwset.ns_rwset:
        kv = _parse(kv_rwset_pb2.KVRWSet, ns_rwset.rwset, bad, f"KVRWSet of {ns_rwset.namespace}")
        collections = [(c.collection_name, _parse(kv_rwset_pb2.HashedRWSet, c.hashed_rwset, bad,
                                                  f"HashedRWSet of {c.collection_name}"))
                       for c in ns_rwset.collection_hashed_rwset]
        parsed.append((ns_rwset.namespace, kv, collections))
    return parsed


def transaction_rwset(envelope: bytes) -> list[NsRWSet]:
    """The read-write set an endorser transaction carries (its first action's), valid or not; empty when the
    envelope does not parse that far."""
    try:
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(envelope).payload)
        action = transaction_pb2.Transaction.FromString(payload.data).actions[0]
        endorsed = transaction_pb2.ChaincodeActionPayload.FromString(action.payload).action
        response = proposal_response_pb2.ProposalResponsePayload.FromString(endorsed.proposal_response_payload)
        return _read_write_set(proposal_pb2.ChaincodeAction.FromString(response.extension).results)
    except (DecodeError, IndexError, _Invalid):
        return []


def _writes(rwset: list[NsRWSet]) -> list[tuple[str, str, bytes | None]]:
    """(namespace, key, value) per write, ``None`` for a delete (Fabric: is_delete or an empty value)."""
    return [(ns, w.key, None if w.is_delete or not w.value else w.value) for ns, kv, _ in rwset for w in kv.writes]


# --- stage 3: MVCC and phantom reads -------------------------------------------------------------

class _StateCheck:
    """Committed state plus the writes of the block's earlier valid transactions."""

    def __init__(self, ledger: LedgerView, number: int) -> None:
        self._ledger = ledger
        self._number = number
        self._changes = BlockChanges(number, ledger)
        self._hashed_updates: set[tuple[str, str, bytes]] = set()

    def run(self, txs: Sequence[TxVerdict]) -> None:
        for tx in txs:
            if tx.code != VALID or not tx.rwset:
                continue
            conflict = self._conflict(tx.rwset)
            if conflict is not None:
                tx.code, tx.reason = conflict
                logger.warning("block %d tx %d (%s) invalid: %s: %s", self._number, tx.index, tx.tx_id[:8],
                               Code.Name(tx.code), tx.reason)
                continue
            self._changes.apply(tx.index, tx.writes(), tx.metadata_writes())
            self._hashed_updates.update((ns, coll, key_hash) for ns, coll, key_hash, _ in tx.hashed_writes())

    def _conflict(self, rwset: list[NsRWSet]) -> tuple[int, str] | None:
        """The code and reason of the first read that is no longer current, ``None`` when all are."""
        mvcc = transaction_pb2.MVCC_READ_CONFLICT
        for ns, kv, collections in rwset:
            for read in kv.reads:
                if (ns, read.key) in self._changes.latest:
                    return mvcc, f"key {read.key!r} of {ns} was written by an earlier transaction of the block"
                committed = self._ledger.get_state(ns, read.key)
                current = committed.version if committed else None
                if current != _version(read):
                    return mvcc, f"key {read.key!r} of {ns} was read at version {_version(read)}, it is at {current}"
            for query in kv.range_queries_info:
                if not self._range_unchanged(ns, query):
                    return (transaction_pb2.PHANTOM_READ_CONFLICT,
                            f"range [{query.start_key!r}, {query.end_key!r}) of {ns} changed since it was read")
            for coll, hashed in collections:
                for hashed_read in hashed.hashed_reads:
                    if (ns, coll, hashed_read.key_hash) in self._hashed_updates:
                        return mvcc, (f"private key {hashed_read.key_hash.hex()} of {ns}/{coll} was written by an "
                                      "earlier transaction of the block")
                    current = self._ledger.get_hashed_version(ns, coll, hashed_read.key_hash)
                    if current != _version(hashed_read):
                        return mvcc, (f"private key {hashed_read.key_hash.hex()} of {ns}/{coll} was read at version "
                                      f"{_version(hashed_read)}, it is at {current}")
        return None

    def _range_unchanged(self, ns: str, query: kv_rwset_pb2.RangeQueryInfo) -> bool:
        """Fabric's phantom check: the range re-run now gives the same keys and versions."""
        current = self._range(ns, query.start_key, query.end_key, include_end=not query.itr_exhausted)
        if query.HasField("reads_merkle_hashes"):
            return _merkle_equal(query.reads_merkle_hashes, current)
        recorded = list(query.raw_reads.kv_reads)
        count = 0
        for count, (key, version) in enumerate(current, start=1):
            if count > len(recorded):
                return False
            read = recorded[count - 1]
            if read.key != key or _version(read) != version:
                return False
        return count == len(recorded)

    def _range(self, ns: str, start: str, end: str, include_end: bool) -> Iterator[tuple[str, Version]]:
        """Keys in [start, end) of committed state merged with the block's updates (deletes hidden), then
        ``end`` itself when the simulation stopped there (Fabric's combined iterator)."""
        updates = {key: (change.value, change.version)
                   for (namespace, key), change in self._changes.latest.items() if namespace == ns}
        pending = sorted(k for k in updates if k >= start and (not end or k < end))
        committed = self._ledger.get_state_range(ns, start, end)
        db_item = next(committed, None)
        i = 0
        while db_item is not None or i < len(pending):
            if i < len(pending) and (db_item is None or pending[i] <= db_item[0]):
                key = pending[i]
                value, version = updates[key]
                i += 1
                if db_item is not None and db_item[0] == key:
                    db_item = next(committed, None)
                if value is not None:
                    yield key, version
            else:
                assert db_item is not None
                yield db_item[0], db_item[1].version
                db_item = next(committed, None)
        if include_end:
            if end in updates:
                value, version = updates[end]
                if value is not None:
                    yield end, version
            else:
                stored: VersionedValue | None = self._ledger.get_state(ns, end)
                if stored is not None:
                    yield end, stored.version


def _version(read: kv_rwset_pb2.KVRead | kv_rwset_pb2.KVReadHash) -> Version | None:
    return Version(read.version.block_num, read.version.tx_num) if read.HasField("version") else None


def _merkle_equal(recorded: kv_rwset_pb2.QueryReadsMerkleSummary, current: Iterator[tuple[str, Version]]) -> bool:
    """Fabric's hashed range-query check: rebuild the merkle summary of the current results and compare."""
    summary = _MerkleSummary(recorded.max_degree)
    for key, version in current:
        summary.add(kv_rwset_pb2.KVRead(key=key, version=kv_rwset_pb2.Version(block_num=version.block,
                                                                              tx_num=version.tx)))
    built = summary.done()
    return (built is not None and built.max_degree == recorded.max_degree and built.max_level == recorded.max_level
            and list(built.max_level_hashes) == list(recorded.max_level_hashes))


class _MerkleSummary:
    """Fabric's ``RangeQueryResultsHelper`` with hashing (SHA-256), enough to compute the summary."""

    def __init__(self, max_degree: int) -> None:
        self._max_degree = max_degree
        self._pending: list[kv_rwset_pb2.KVRead] = []
        self._tree: dict[int, list[bytes]] = {}
        self._max_level = 1

    def add(self, read: kv_rwset_pb2.KVRead) -> None:
        self._pending.append(read)
        if len(self._pending) > self._max_degree:
            self._flush()

    def _flush(self) -> None:
        data = kv_rwset_pb2.QueryReads(kv_reads=self._pending).SerializeToString()
        self._pending = []
        self._tree.setdefault(1, []).append(hashlib.sha256(data).digest())
        level = 1
        while len(self._tree.get(level, [])) > self._max_degree:
            combined = hash_parts(*self._tree.pop(level))
            level += 1
            self._tree.setdefault(level, []).append(combined)
            self._max_level = max(self._max_level, level)

    def done(self) -> kv_rwset_pb2.QueryReadsMerkleSummary | None:
        if self._max_degree < 2 or (self._max_level == 1 and not self._tree.get(1)):
            return None  # Fabric: raw reads, no summary
        if self._pending:
            self._flush()
        level = 1
        while level < self._max_level:
            hashes = self._tree.pop(level, [])
            level += 1
            if hashes:
                self._tree.setdefault(level, []).append(hashes[0] if len(hashes) == 1 else hash_parts(*hashes))
        final = self._tree.get(self._max_level, [])
        if len(final) > self._max_degree:
            self._max_level += 1
            final = [hash_parts(*final)]
            self._tree = {self._max_level: final}
        return kv_rwset_pb2.QueryReadsMerkleSummary(max_degree=self._max_degree, max_level=self._max_level,
                                                    max_level_hashes=final)
