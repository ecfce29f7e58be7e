"""``python -m swarmfuse.network.embedded --home HOME``: run the embedded engine of a network home
until SIGTERM or SIGINT. Logs go to stderr (the supervisor writes them to ``<home>/logs/engine.log``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from swarmfuse.network.embedded.engine import Engine

logger = logging.getLogger("swarmfuse.network.embedded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmfuse.network.embedded", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="the network home to serve")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("SWARMFUSE_ENGINE_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        engine = Engine(args.home)
        engine.start()
    except Exception:  # a start-up failure is logged with its traceback and ends with a non-zero exit status
        logger.exception("cannot start the embedded engine")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: stop.set())
    stop.wait()
    logger.info("stopping")
    engine.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
