"""Replay a list of calls on a fresh in-memory ledger and a fresh chaincode; print every response's bytes.

Used by ``test_canonical_bytes.py`` to run the same proposals in processes with other time zones and
hash seeds: ``python cc_replay.py < calls.json`` prints one JSON document with, per call, the status,
message, payload, event and writes (bytes as base64).
"""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from typing import Any

from swarmfuse.chaincode.app import create_chaincode
from swarmfuse.chaincode.memstub import MemoryLedger
from swarmfuse.chaincode.stub import ClientIdentity


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def replay(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each call: ``mspid``, ``cert`` (PEM text), ``function``, ``args``, ``submit`` (bool), ``at`` (ISO or null)."""
    ledger = MemoryLedger()
    chaincode = create_chaincode()
    results = []
    for call in calls:
        creator = ClientIdentity(call["mspid"], call["cert"].encode())
        at = datetime.fromisoformat(call["at"]) if call.get("at") else None
        endorsed = ledger.endorse(chaincode, creator, call["function"], *call["args"], at=at)
        if call["submit"] and endorsed.response.ok:
            ledger.commit_block([endorsed])
        stub = endorsed.stub
        results.append(
            {
                "function": call["function"],
                "status": endorsed.response.status,
                "message": endorsed.response.message,
                "payload": b64(endorsed.response.payload),
                "event": [stub.event.name, b64(stub.event.payload)] if stub.event else None,
                "writes": sorted([k, None if v is None else b64(v)] for k, v in stub.writes.items()),
            }
        )
    return results


if __name__ == "__main__":
    json.dump(replay(json.load(sys.stdin)), sys.stdout, sort_keys=True)
