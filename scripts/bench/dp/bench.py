"""Fusion accuracy against the privacy of the feature releases, on the emoji data (the main job's extractors).

For each ε (per release, δ = 1e-5) and seed: the text and image features of every entity go through the
site's release mechanism (:func:`swarmfuse.client.privacy.release.release`: projection, scaling to the clip norm,
Gaussian noise calibrated by dp-accounting; ε = ∞: the features as a non-private round sends them), and the
round's intermediate head (:func:`swarmfuse.client.site.fusion.train_fusion_head`) is trained and scored on
them as the leader would — the label holder leads, so both feature blocks are releases. Single-modality heads
on the same releases for comparison, and a row of releases without noise (projected and scaled only). Prints a table and ends with one line
``dp eps_inf=<acc> eps_8=<acc> eps_4=<acc> eps_1=<acc>`` (fused accuracy, mean over the seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

EPSILONS = (math.inf, 8.0, 4.0, 1.0)
PROJECTED = -1.0
"""The row of releases projected and scaled without noise (σ = 0): what the mechanism costs before any noise."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--projection-dim", type=int, default=32)
    parser.add_argument("--clip", default="1")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    from swarmfuse.chaincode.contracts.records import PrivacyTerms
    from swarmfuse.client.privacy.accountant import epsilon_of, noise_multiplier
    from swarmfuse.client.privacy.release import projection, release, scaled
    from swarmfuse.client.site.fusion import train_fusion_head
    from swarmfuse.extractors.pipeline import build_features

    start = time.perf_counter()
    features = build_features().features
    print(f"features of {len(features.ids)} entities ({features.text.shape[1]}-d text, {features.image.shape[1]}-d "
          f"image) in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    classes = list(features.classes)
    rows = []
    for epsilon in (*EPSILONS, PROJECTED):
        for seed in range(args.seeds):
            blocks = {}
            sigma = None
            for name, x in (("text", features.text), ("image", features.image)):
                extractor = f"{name}-extractor".encode().hex().ljust(64, "0")[:64]
                if math.isinf(epsilon):
                    blocks[name] = x
                elif epsilon == PROJECTED:
                    blocks[name] = scaled(x, projection(x.shape[1], args.projection_dim, extractor), float(args.clip))
                else:
                    terms = PrivacyTerms(mechanism="gaussian", kinds=["features"], delta="0.00001",
                                         release_epsilon=repr(epsilon), budget_epsilon=repr(epsilon),
                                         budget_sigma=noise_multiplier(epsilon, 1e-5), clip=args.clip,
                                         projection_dim=args.projection_dim)
                    made = release(x, terms, extractor, "0" * 64, rng=np.random.default_rng(1000 * seed + len(name)))
                    blocks[name] = made.features
                    sigma = float(made.record.noise_multiplier)
            scores = {}
            for label, parts in (("fused", ("text", "image")), ("text", ("text",)), ("image", ("image",))):
                x = np.concatenate([blocks[p] for p in parts], axis=1)
                _, metrics = train_fusion_head(x, features.labels, features.splits, classes, [], "bench", seed)
                scores[label] = metrics["test_accuracy"]
            rows.append({"epsilon": epsilon, "seed": seed, "sigma": sigma, **scores})
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"{'epsilon':>8} {'sigma':>7} {'spent':>7} {'fused':>7} {'text':>7} {'image':>7}   (test accuracy, mean of "
          f"{args.seeds} seeds; projection {args.projection_dim}, clip {args.clip}, delta 1e-5; the label holder DC1 "
          f"leads, so each feature site spends one release's epsilon of its budget)")
    means = {}
    for epsilon in (*EPSILONS, PROJECTED):
        mine = [r for r in rows if r["epsilon"] == epsilon]
        mean = {k: float(np.mean([r[k] for r in mine])) for k in ("fused", "text", "image")}
        means[epsilon] = mean["fused"]
        noisy = epsilon > 0 and not math.isinf(epsilon)
        sigma = float(noise_multiplier(epsilon, 1e-5)) if noisy else 0.0
        spent = f"{epsilon_of(sigma, 1e-5):7.3f}" if noisy else f"{'inf':>7}"
        name = "inf, projected" if epsilon == PROJECTED else str(epsilon)
        print(f"{name:>8} {sigma:>7.3f} {spent} {mean['fused']:>7.4f} {mean['text']:>7.4f} {mean['image']:>7.4f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    print("dp " + " ".join(f"eps_{'inf' if math.isinf(e) else int(e)}={means[e]:.4f}" for e in EPSILONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
