"""Private set intersection among a leader and participants: correct, order-free, nothing in the clear."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from swarmfuse.client.site.alignment import (
    AlignmentError,
    LeaderSession,
    ParticipantSession,
    commitment_of,
)
from swarmfuse.client.site.manifest import load_manifest

CONTEXT = "task1/r1"


def _align(tmp_path: Path, leader_ids: set[str], others: dict[str, set[str]]) -> tuple[list[str], dict[str, list[str]]]:
    leader = LeaderSession.load_or_create(tmp_path / "leader.json", CONTEXT, sorted(leader_ids))
    sessions = {name: ParticipantSession.load_or_create(tmp_path / f"{name}.json", CONTEXT, sorted(ids))
                for name, ids in others.items()}
    for name, session in sessions.items():
        reply = leader.respond(name, session.blinded())
        leader.confirm(name, session.answer(reply["leader"]))
    assert leader.complete(list(others))
    aligned = leader.aligned_ids(list(others))
    views = {name: session.aligned_ids(leader.positions_for(name, aligned)) for name, session in sessions.items()}
    return aligned, views


def test_every_party_learns_exactly_the_common_ids_in_the_same_order(tmp_path: Path) -> None:
    rng = random.Random(3)
    universe = [f"emoji-{i:04d}" for i in range(400)]
    leader = set(rng.sample(universe, 300))
    others = {"DC2": set(rng.sample(universe, 320)), "DC3": set(rng.sample(universe, 310))}
    aligned, views = _align(tmp_path, leader, others)
    expected = sorted(leader & others["DC2"] & others["DC3"])
    assert aligned == expected and all(view == expected for view in views.values())


def test_only_blinded_points_leave_a_party(tmp_path: Path) -> None:
    ids = [f"patient-{i}" for i in range(20)]
    participant = ParticipantSession.load_or_create(tmp_path / "p.json", CONTEXT, ids)
    leader = LeaderSession.load_or_create(tmp_path / "l.json", CONTEXT, ids[:10])
    reply = leader.respond("P", participant.blinded())
    sent = json.dumps(participant.blinded()) + json.dumps(reply)
    assert not any(entity in sent for entity in ids)
    # The participant never gets its own points back under the leader's key, so it cannot test which of
    # its IDs the leader holds: the reply carries only the leader's blinded IDs.
    assert set(reply) == {"leader"}
    assert all(len(bytes.fromhex(point)) == 32 for point in participant.blinded())
    # Another round blinds the same IDs to unrelated points (the round is part of the hash).
    other = ParticipantSession.load_or_create(tmp_path / "q.json", "task1/r2", ids)
    assert set(other.blinded()).isdisjoint(participant.blinded())


def test_sessions_survive_a_restart_with_their_secrets(tmp_path: Path) -> None:
    aligned, _ = _align(tmp_path, {"a", "b", "c"}, {"DC2": {"b", "c", "d"}})
    again = LeaderSession.load_or_create(tmp_path / "leader.json", CONTEXT, ["x"])
    assert again.aligned_ids(["DC2"]) == aligned == ["b", "c"]
    assert (tmp_path / "leader.json").stat().st_mode & 0o777 == 0o600


def test_commitment_matches_the_manifest_commitment(tmp_path: Path) -> None:
    manifest = tmp_path / "texts.csv"
    manifest.write_text("entity_id,text\nb,beta\na,alpha\n")
    salt = bytes(range(32))
    assert commitment_of(salt, ["b", "a"]) == load_manifest(manifest, "text").entity_commitment(salt)


def test_malformed_or_out_of_turn_messages_are_refused(tmp_path: Path) -> None:
    leader = LeaderSession.load_or_create(tmp_path / "l.json", CONTEXT, ["a", "b"])
    with pytest.raises(AlignmentError, match="not a valid ristretto255 point"):
        leader.respond("P", ["00" * 31 + "01"])
    with pytest.raises(AlignmentError, match="hex"):
        leader.respond("P", ["zz"])
    with pytest.raises(AlignmentError, match="before sending"):
        leader.confirm("P", [])
    participant = ParticipantSession.load_or_create(tmp_path / "p.json", CONTEXT, ["a"])
    reply = leader.respond("P", participant.blinded())
    with pytest.raises(AlignmentError, match="answered 1 points for 2"):
        leader.confirm("P", participant.answer(reply["leader"])[:1])
    with pytest.raises(AlignmentError, match="outside"):
        participant.aligned_ids([5])
