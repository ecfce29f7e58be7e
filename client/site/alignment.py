"""Entity alignment by private set intersection (ECDH over ristretto255, through ``rbcl``'s libsodium).

The round's leader L holds IDs Y and a secret scalar a; each participant P holds IDs X and a secret b.
IDs map to the group with H(id) = ristretto255_from_hash(SHA-512(domain ‖ task ‖ round ‖ id)).

1. P sends [H(x)^b] in a random order it remembers;
2. L keeps those points raised to a (never sent back: P could otherwise test its IDs against L's set)
   and answers with its own [H(y)^a] in a random order;
3. P sends back [(H(y)^a)^b] in L's order. L now knows which of its IDs P also holds, and where each
   sits in P's list (H(y)^ab = H(x)^ba exactly when y = x); P learns nothing about L's set;
4. once every participant answered, L intersects, picks a random salt and records on-chain the size
   of the aligned set and SHA-256(salt ‖ sorted IDs joined by newlines); it tells each participant the
   positions of the aligned entities in that participant's own list, and the salt. The participant
   maps positions back to its IDs and checks the commitment against the ledger.

Nobody sees another party's IDs outside the intersection: only blinded points cross, and a point is
only ever raised by its owner's secret. Each session is kept in a file (mode 0600) so a restarted
agent carries on with the same secrets.

Each side bounds the other: a list of more points than the sender's on-chain summary declares entities is
refused (a peer that sent the blinded hashes of many candidate IDs would learn which of them this site holds),
and the leader reblinds one list per participant and round (the same list again gets the same answer, after a
restart; another list is refused). What the leader still learns beyond the recorded intersection: with each
participant, how many IDs the two share.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Sequence
from pathlib import Path

import rbcl

from swarmfuse.errors import SwarmfuseError
from swarmfuse.files import write_atomic

DOMAIN = b"swarmfuse/psi/v1\x00"
POINT_BYTES = rbcl.crypto_core_ristretto255_BYTES


class AlignmentError(SwarmfuseError, ValueError):
    """A PSI message is malformed or arrives out of turn."""


def commitment_of(salt: bytes, ids: Sequence[str]) -> str:
    """SHA-256(salt ‖ sorted IDs joined by newlines): the on-chain commitment to an aligned entity set."""
    return hashlib.sha256(salt + "\n".join(sorted(ids)).encode()).hexdigest()


def hash_to_group(context: str, entity_id: str) -> bytes:
    digest = hashlib.sha512(DOMAIN + context.encode() + b"\x00" + entity_id.encode()).digest()
    return rbcl.crypto_core_ristretto255_from_hash(digest)


def _raise(point: bytes, scalar: bytes) -> bytes:
    if len(point) != POINT_BYTES or not rbcl.crypto_core_ristretto255_is_valid_point(point):
        raise AlignmentError("a blinded value is not a valid ristretto255 point")
    return rbcl.crypto_scalarmult_ristretto255(scalar, point)


def _points(values: Sequence[str]) -> list[bytes]:
    try:
        return [bytes.fromhex(value) for value in values]
    except (TypeError, ValueError) as exc:
        raise AlignmentError(f"blinded values must be hex strings: {exc}") from exc


def _save(path: Path, document: dict[str, object]) -> None:
    write_atomic(path, json.dumps(document).encode())  # private: it holds the session's secret scalar


class ParticipantSession:
    """A participant's side of one round's alignment."""

    def __init__(self, path: Path, context: str, ids: list[str], secret: bytes, answered: bool) -> None:
        self.path = path
        self.context = context
        self.ids = ids  # in the (random) order the blinded points were sent
        self._secret = secret
        self.answered = answered

    @classmethod
    def load_or_create(cls, path: Path, context: str, ids: Sequence[str]) -> ParticipantSession:
        if path.exists():
            doc = json.loads(path.read_text())
            return cls(path, doc["context"], doc["ids"], bytes.fromhex(doc["secret"]), doc["answered"])
        order = list(ids)
        secrets.SystemRandom().shuffle(order)
        session = cls(path, context, order, rbcl.crypto_core_ristretto255_scalar_random(), False)
        session.save()
        return session

    def save(self) -> None:
        _save(self.path, {"context": self.context, "ids": self.ids, "secret": self._secret.hex(),
                          "answered": self.answered})

    def blinded(self) -> list[str]:
        """Step 1: H(x)^b of every own ID, in this session's order."""
        return [_raise(hash_to_group(self.context, i), self._secret).hex() for i in self.ids]

    def answer(self, leader_points: Sequence[str], declared: int) -> list[str]:
        """Step 3: the leader's points raised to b, in the leader's order; refused when the leader sent more points
        than the ``declared`` entities of its on-chain summary."""
        if len(leader_points) > declared:
            raise AlignmentError(f"the leader sent {len(leader_points)} blinded IDs, more than the {declared} "
                                 "entities its on-chain summary declares")
        answer = [_raise(point, self._secret).hex() for point in _points(leader_points)]
        self.answered = True
        return answer

    def aligned_ids(self, positions: Sequence[int]) -> list[str]:
        """Step 4: own IDs at the leader's positions (sorted)."""
        if any(not isinstance(p, int) or not 0 <= p < len(self.ids) for p in positions):
            raise AlignmentError("the leader named a position outside this participant's list")
        if len(set(positions)) != len(positions):
            raise AlignmentError("the leader named a position twice")
        return sorted(self.ids[p] for p in positions)


class LeaderSession:
    """The leader's side of one round's alignment, with every participant (thread-safe, kept in a file)."""

    def __init__(self, path: Path, document: dict[str, object]) -> None:
        self.path = path
        self._doc = document
        self._lock = threading.Lock()
        self._own: list[str] | None = None

    @classmethod
    def load_or_create(cls, path: Path, context: str, ids: Sequence[str]) -> LeaderSession:
        if path.exists():
            return cls(path, json.loads(path.read_text()))
        order = list(ids)
        secrets.SystemRandom().shuffle(order)
        document: dict[str, object] = {
            "context": context, "ids": order, "secret": rbcl.crypto_core_ristretto255_scalar_random().hex(),
            "salt": secrets.token_bytes(32).hex(), "reblinded": {}, "matches": {},
        }
        session = cls(path, document)
        _save(path, document)
        return session

    @property
    def salt(self) -> bytes:
        return bytes.fromhex(str(self._doc["salt"]))

    @property
    def _secret(self) -> bytes:
        return bytes.fromhex(str(self._doc["secret"]))

    def respond(self, participant: str, points: Sequence[str], declared: int) -> dict[str, list[str]]:
        """Step 2: keep the participant's points raised to a; answer with the leader's own blinded IDs. Refused when
        the participant sent more points than the ``declared`` entities of its on-chain summary, or another list
        than the one it sent before in this round."""
        if len(points) > declared:
            raise AlignmentError(f"{participant} sent {len(points)} blinded IDs, more than the {declared} entities "
                                 "its on-chain summary declares")
        reblinded = [_raise(point, self._secret).hex() for point in _points(points)]
        with self._lock:
            if self._own is None:  # the leader's own blinded IDs: hashed to the curve once per round, not per call
                self._own = [_raise(hash_to_group(str(self._doc["context"]), i), self._secret).hex()
                             for i in self._doc["ids"]]  # type: ignore[union-attr]
            own = self._own
            before = self._doc["reblinded"].get(participant)  # type: ignore[union-attr]
            if before is not None and before != reblinded:
                raise AlignmentError(f"{participant} already sent its blinded IDs for this round")
            self._doc["reblinded"][participant] = reblinded  # type: ignore[index]
            self._doc["matches"].pop(participant, None)  # type: ignore[union-attr]
            _save(self.path, self._doc)
        return {"leader": own}

    def confirm(self, participant: str, points: Sequence[str]) -> int:
        """Step 3 received: match the participant's answer; returns how many IDs the two share."""
        answer = [point.lower() for point in points]
        with self._lock:
            reblinded = self._doc["reblinded"].get(participant)  # type: ignore[union-attr]
            if reblinded is None:
                raise AlignmentError(f"{participant} confirmed before sending its blinded IDs")
            if len(answer) != len(self._doc["ids"]):  # type: ignore[arg-type]
                raise AlignmentError(f"{participant} answered {len(answer)} points for {len(self._doc['ids'])}")  # type: ignore[arg-type]
            where = {point: position for position, point in enumerate(reblinded)}
            matches = {entity: where[point] for entity, point in zip(self._doc["ids"], answer, strict=True)  # type: ignore[arg-type]
                       if point in where}
            self._doc["matches"][participant] = matches  # type: ignore[index]
            _save(self.path, self._doc)
        return len(matches)

    def complete(self, participants: Sequence[str]) -> bool:
        with self._lock:
            return all(p in self._doc["matches"] for p in participants)  # type: ignore[operator]

    def aligned_ids(self, participants: Sequence[str]) -> list[str]:
        """The leader's IDs every participant also holds, sorted."""
        with self._lock:
            shared = set(self._doc["ids"])  # type: ignore[arg-type]
            for participant in participants:
                shared &= set(self._doc["matches"][participant])  # type: ignore[index]
        return sorted(shared)

    def positions_for(self, participant: str, aligned: Sequence[str]) -> list[int]:
        """Where each aligned ID (in ``aligned``'s order) sits in the participant's own list."""
        with self._lock:
            matches = self._doc["matches"].get(participant)  # type: ignore[union-attr]
        if matches is None:
            raise AlignmentError(f"{participant} has not finished the alignment")
        return [matches[entity] for entity in aligned]

    def commitment(self, aligned: Sequence[str]) -> str:
        return commitment_of(self.salt, aligned)
