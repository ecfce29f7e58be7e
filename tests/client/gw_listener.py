"""Listener process for the kill-and-resume test: appends each Put event's key to a file, checkpointing to another."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from swarmfuse.client.gateway import FileCheckpointer, Gateway


def main(profile: str, channel: str, start_block: str, checkpoint: str, output: str) -> None:
    with Gateway.from_profile(Path(profile)) as gateway:
        events = gateway.network(channel).chaincode_events("swarmfuse", int(start_block), FileCheckpointer(Path(checkpoint)))
        with open(output, "a") as sink:
            for event in events:
                if event.event_name == "Put":
                    sink.write(event.transaction_id + "\n")
                    sink.flush()
                    os.fsync(sink.fileno())


if __name__ == "__main__":
    main(*sys.argv[1:])
