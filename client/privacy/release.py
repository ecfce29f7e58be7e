"""Differential privacy on a feature release: what leaves a site is projected, scaled and noised per entity.

Each entity's feature vector is multiplied by a random projection to ``projection_dim`` dimensions (a Gaussian
matrix drawn from the extractor's SHA-256, so it is fixed with the extractor, public, and hashed into the
release record), scaled to L2 norm ``clip`` (every vector, not only the longer ones: the norm carries no
information then), and perturbed with Gaussian noise N(0, (σ·clip)² I). Adding or removing one entity changes
the release by one row of norm ``clip``, so the release is a Gaussian mechanism of sensitivity ``clip`` and
noise multiplier σ, calibrated for a target (ε, δ) by :mod:`~swarmfuse.client.privacy.accountant`.

What this does not protect: the extractor and the projection (public, and not private with respect to the
extractor's own training data), which entities are in the release (the round's aligned set), and labels.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import numpy as np

from swarmfuse.chaincode.contracts.records import PrivacyTerms, ReleasePrivacy
from swarmfuse.client.privacy.accountant import epsilon_of, name, noise_multiplier


def projection(in_dim: int, out_dim: int, extractor_sha256: str) -> np.ndarray:
    """The release's projection for an extractor: ``[in_dim, out_dim]``, N(0, 1/out_dim), drawn from its hash."""
    rng = np.random.default_rng(int(extractor_sha256[:32], 16))
    return (rng.standard_normal((in_dim, out_dim)) / np.sqrt(out_dim)).astype(np.float32)


def projection_sha256(matrix: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype="<f4").tobytes()).hexdigest()


@dataclass(frozen=True)
class Release:
    """A noisy feature release and the record that goes on-chain with it."""

    features: np.ndarray
    record: ReleasePrivacy


def scaled(features: np.ndarray, matrix: np.ndarray, clip: float) -> np.ndarray:
    """Projected rows, each scaled to L2 norm ``clip`` (a zero row stays zero)."""
    projected = np.asarray(features, dtype=np.float64) @ matrix.astype(np.float64)
    norms = np.linalg.norm(projected, axis=1, keepdims=True)
    return np.divide(projected * clip, norms, out=np.zeros_like(projected), where=norms > 0)


def release(features: np.ndarray, terms: PrivacyTerms, extractor_sha256: str, dataset_sha256: str,
            rng: np.random.Generator | None = None) -> Release:
    """The DP release of ``features`` (one row per entity) under the agreed ``terms``; fresh noise unless ``rng``
    is given (tests only: noise a receiver could redraw protects nothing)."""
    epsilon, delta, clip = float(terms.release_epsilon), float(terms.delta), float(terms.clip)
    sigma_text = noise_multiplier(epsilon, delta)
    sigma = float(sigma_text)
    matrix = projection(features.shape[1], terms.projection_dim, extractor_sha256)
    values = scaled(features, matrix, clip)
    noise_rng = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
    noisy = (values + noise_rng.normal(0.0, sigma * clip, size=values.shape)).astype(np.float32)
    record = ReleasePrivacy(
        mechanism="gaussian", clip=terms.clip, noise_multiplier=sigma_text, delta=terms.delta,
        epsilon=f"{epsilon_of(sigma, delta):.9f}", projection_dim=terms.projection_dim,
        projection_sha256=projection_sha256(matrix), dataset_sha256=dataset_sha256,
        accountant=name())
    return Release(noisy, record)
