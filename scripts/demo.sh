#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: set-up, then three data centres run one multimodal fusion
# round on a local network of the default ledger engine (Fabric when a release is configured, the
# embedded engine otherwise): DC1 holds the labels, DC2 the texts, DC3 the images (the emoji data);
# each feature site trains its own extractor without labels (AWD-LSTM for texts, ResNet50 for images; cached),
# run with ONNX Runtime and fine-tuned by split learning in the round; a report (HTML + PNG) of the fused
# model against its baselines in each extractor regime.
# Usage: scripts/demo.sh [--out DIR] [--home DIR] [--port-base N] [--engine auto|embedded|fabric]
#                        [--split-epochs N] [--extractors site|reference] [--reference] [--seed S]
#                        [--image-backbone resnet50|efficientnet_lite0] [--keep-running]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[demo] error:\033[0m %s\n' "$*" >&2; exit 1; }

out=$root/demo-report home="" port_base=27000 engine=auto backbone=resnet50 keep=() split=8 extractors=site ref=() seed=0
while (($#)); do
  case $1 in
    --out) out=${2:?--out needs a folder}; shift ;;
    --home) home=${2:?--home needs a folder}; shift ;;
    --port-base) port_base=${2:?--port-base needs a number}; shift ;;
    --engine) engine=${2:?--engine needs auto, embedded or fabric}; shift ;;
    --image-backbone) backbone=${2:?--image-backbone needs resnet50 or efficientnet_lite0}; shift ;;
    --split-epochs) split=${2:?--split-epochs needs a number}; shift ;;
    --extractors) extractors=${2:?--extractors needs site or reference}; shift ;;
    --reference) ref=(--reference) ;;
    --seed) seed=${2:?--seed needs a number}; shift ;;
    --keep-running) keep=(--keep-running) ;;
    *) die "unknown argument: $1 (see the usage at the top of scripts/demo.sh)" ;;
  esac
  shift
done
bash scripts/setup.sh
purge=0
[[ -z $home ]] && { home=$(mktemp -d "${TMPDIR:-/tmp}/swarmfuse-demo.XXXXXX")/home; purge=1; }
cleanup() {
  if ((purge)) && ((${#keep[@]} == 0)); then rm -rf "$(dirname "$home")"; fi
}
trap cleanup EXIT
say "network home $home, report in $out"
.venv/bin/python -m swarmfuse.client.demo.job "$out" --home "$home" --port-base "$port_base" \
  --engine "$engine" --image-backbone "$backbone" --split-epochs "$split" --extractors "$extractors" \
  --seed "$seed" "${ref[@]}" "${keep[@]}"
