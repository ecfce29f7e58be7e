"""``Task``: proposed by one founder, active only once every founder it names confirmed the same hash."""

from __future__ import annotations

import json

import pytest
from cc_world import World, config_sha256, founded, profile, task_config

CONFIG = json.dumps({"task": "task1", "founders": ["DC3MSP", "DC1MSP", "DC2MSP"], "auditors": ["AuditorMSP"]})
HASH = config_sha256(CONFIG)


def test_init_proposes_and_every_founder_must_confirm_before_the_task_is_active() -> None:
    world = World()
    proposed = world.ok("DC2", "Task:Init", CONFIG)
    assert (proposed["status"], proposed["config_sha256"]) == ("pending", HASH)
    assert (proposed["confirmed_by"], proposed["awaiting"]) == (["DC2MSP"], ["DC1MSP", "DC3MSP"])
    assert proposed["founders"] == ["DC1MSP", "DC2MSP", "DC3MSP"] and proposed["proposed_by"] == "DC2MSP"
    assert world.ledger.events[-1].name == "TaskProposed"

    # Nothing else runs while the task is pending.
    world.refused("DC2", "Membership:Register", profile("DC2"), status=409, fragment="not initialised")
    world.refused("DC1", "Rounds:Open", "r1", world.round_spec(), status=409, fragment="not initialised")
    for org, function, args in [("DC2", "Task:Get", ()), ("Auditor", "Audit:Members", ("10", ""))]:
        response = world.query(org, function, *args)
        assert (response.status, response.message.split(":")[0]) == (409, "Conflict"), response.message

    assert world.read("DC4", "Task:Proposal", HASH)["awaiting"] == ["DC1MSP", "DC3MSP"]
    assert world.ok("DC1", "Task:Confirm", HASH)["status"] == "pending"
    world.refused("DC1", "Task:Confirm", HASH, status=409, fragment="already confirmed")
    world.refused("DC2", "Task:Confirm", HASH, status=409, fragment="already confirmed")
    world.refused("DC3", "Membership:Register", profile("DC3"), status=409, fragment="not initialised")
    last = world.ok("DC3", "Task:Confirm", HASH)
    assert (last["status"], last["awaiting"]) == ("active", [])
    event = world.ledger.events[-1]
    assert event.name == "TaskConfirmed" and json.loads(event.payload)["status"] == "active"

    record = world.read("Auditor", "Task:Get")
    assert record["confirmed_by"] == ["DC1MSP", "DC2MSP", "DC3MSP"] and record["config_sha256"] == HASH
    assert (record["proposed_by"], record["auditors"]) == ("DC2MSP", ["AuditorMSP"])
    assert world.query("DC4", "Task:Get").status == 403
    world.ok("DC3", "Membership:Register", profile("DC3"))
    world.refused("DC1", "Task:Init", CONFIG, status=409, fragment="already initialised")
    world.refused("DC1", "Task:Confirm", HASH, status=409, fragment="already initialised")


def test_the_config_hash_is_what_every_founder_computes_on_its_own() -> None:
    world = World()
    shuffled = json.dumps({"founders": ["DC2MSP", "DC3MSP", "DC1MSP"], "auditors": ["AuditorMSP"], "task": "task1"})
    assert world.ok("DC1", "Task:Init", shuffled)["config_sha256"] == HASH
    world.refused("DC2", "Task:Init", CONFIG, status=409, fragment="proposed already")


def test_a_first_caller_cannot_define_the_task() -> None:
    world = World()
    # DC4 (on the channel, but meant to be no founder) proposes a task with a friend and no auditor.
    grab = task_config(["DC4MSP", "DC1MSP"], auditors=())
    world.ok("DC4", "Task:Init", grab)
    world.refused("DC4", "Membership:Register", profile("DC4"), status=409, fragment="not initialised")
    # Alone it cannot: a task needs two founders, and the proposer must be one of them.
    world.refused("DC4", "Task:Init", task_config(["DC4MSP"]), status=400, fragment="founders")
    world.refused("DC4", "Task:Init", CONFIG, status=403, fragment="DC4MSP is not among the founders")
    world.refused("DC4", "Task:Confirm", HASH, status=404, fragment="no task configuration")
    # The founders' own configuration is proposed beside it; the grab can neither replace nor stop it.
    world.ok("DC1", "Task:Init", CONFIG)
    world.refused("DC4", "Task:Confirm", HASH, status=403, fragment="not among the founders")
    world.ok("DC2", "Task:Confirm", HASH)
    world.ok("DC3", "Task:Confirm", HASH)
    assert world.read("DC1", "Task:Get")["founders"] == ["DC1MSP", "DC2MSP", "DC3MSP"]
    assert world.read("DC4", "Task:Proposal", config_sha256(grab))["status"] == "superseded"
    world.refused("DC1", "Task:Confirm", config_sha256(grab), status=409, fragment="already initialised")


@pytest.mark.parametrize(
    ("who", "config", "status", "fragment"),
    [
        ("DC4", CONFIG, 403, "DC4MSP is not among the founders"),
        ("Auditor", CONFIG, 403, "AuditorMSP is not among the founders"),
        ("DC1", CONFIG.replace("task1", "task2"), 400, "config names task 'task2' but this is channel 'task1'"),
        ("DC1", '{"task":"task1","founders":[]}', 400, "founders"),
        ("DC1", '{"task":"task1","founders":["DC1MSP"]}', 400, "at least 2"),
        ("DC1", '{"task":"task1","founders":["DC1MSP","DC1MSP"]}', 400, "must not repeat"),
        ("DC1", '{"task":"task1","founders":["DC1MSP","DC2MSP"],"auditors":["DC1MSP"]}', 400, "founder and auditor"),
        ("DC1", '{"task":"task1","founders":["DC1MSP","DC2MSP"],"extra":1}', 400, "extra"),
        ("DC1", "not json", 400, "argument 'config'"),
    ],
)
def test_init_rejections_write_nothing(who: str, config: str, status: int, fragment: str) -> None:
    World().refused(who, "Task:Init", config, status=status, fragment=fragment)


def test_confirm_rejections_write_nothing() -> None:
    world = World()
    world.ok("DC1", "Task:Init", CONFIG)
    world.refused("DC2", "Task:Confirm", "abc", status=400, fragment="argument 'config_sha256'")
    world.refused("DC2", "Task:Confirm", "0" * 64, status=404, fragment="no task configuration")
    world.refused("Auditor", "Task:Confirm", HASH, status=403, fragment="not among the founders")
    assert world.query("DC1", "Task:Proposal", "0" * 64).status == 404


def test_task_get_before_init_is_refused() -> None:
    response = World().query("DC1", "Task:Get")
    assert (response.status, response.message.split(":")[0]) == (409, "Conflict")


def test_founded_world_is_active() -> None:
    assert founded().read("DC1", "Task:Get")["confirmed_by"] == ["DC1MSP", "DC2MSP", "DC3MSP"]
