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
    ids_of = others
    for name, session in sessions.items():
        reply = leader.respond(name, session.blinded(), declared=len(ids_of[name]))
        leader.confirm(name, session.answer(reply["leader"], declared=len(leader_ids)))
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
    reply = leader.respond("P", participant.blinded(), declared=20)
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
        leader.respond("P", ["00" * 31 + "01"], declared=1)
    with pytest.raises(AlignmentError, match="hex"):
        leader.respond("P", ["zz"], declared=1)
    with pytest.raises(AlignmentError, match="before sending"):
        leader.confirm("P", [])
    participant = ParticipantSession.load_or_create(tmp_path / "p.json", CONTEXT, ["a"])
    reply = leader.respond("P", participant.blinded(), declared=1)
    with pytest.raises(AlignmentError, match="answered 1 points for 2"):
        leader.confirm("P", participant.answer(reply["leader"], declared=2)[:1])
    with pytest.raises(AlignmentError, match="outside"):
        participant.aligned_ids([5])


def test_each_side_refuses_more_points_than_the_other_declared_on_chain(tmp_path: Path) -> None:
    """A leader or participant that sends the blinded hashes of many candidate IDs (to learn which of them the
    other holds) is refused once it sends more than the entity count of its on-chain summary."""
    candidates = [f"candidate-{i}" for i in range(50)]
    leader = LeaderSession.load_or_create(tmp_path / "l.json", CONTEXT, candidates)
    probing = ParticipantSession.load_or_create(tmp_path / "probe.json", CONTEXT, candidates)
    with pytest.raises(AlignmentError, match="P sent 50 blinded IDs, more than the 10 entities its on-chain"):
        leader.respond("P", probing.blinded(), declared=10)
    honest = ParticipantSession.load_or_create(tmp_path / "p.json", CONTEXT, candidates[:10])
    reply = leader.respond("P", honest.blinded(), declared=10)
    with pytest.raises(AlignmentError, match="the leader sent 50 blinded IDs, more than the 30 entities"):
        honest.answer(reply["leader"], declared=30)
    assert not honest.answered


def test_the_leader_reblinds_one_list_per_participant_and_round(tmp_path: Path) -> None:
    leader = LeaderSession.load_or_create(tmp_path / "l.json", CONTEXT, ["a", "b", "c"])
    first = ParticipantSession.load_or_create(tmp_path / "p.json", CONTEXT, ["a", "b"])
    reply = leader.respond("P", first.blinded(), declared=2)
    assert leader.respond("P", first.blinded(), declared=2) == reply  # the same list again: a restarted agent
    other = ParticipantSession.load_or_create(tmp_path / "q.json", CONTEXT, ["c", "d"])
    with pytest.raises(AlignmentError, match="P already sent its blinded IDs for this round"):
        leader.respond("P", other.blinded(), declared=2)
