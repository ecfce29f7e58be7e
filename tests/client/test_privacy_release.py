"""The release mechanism of a site's features: σ calibrated by the accountant, noise of the stated size, every
vector scaled to the clip norm, the projection fixed with the extractor, and a release of the same rows sent
again from the cache (no fresh noise, so no new spending)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from swarmfuse.chaincode.contracts.records import PrivacyTerms
from swarmfuse.client.privacy.accountant import epsilon_of, noise_multiplier
from swarmfuse.client.privacy.release import projection, projection_sha256, release, scaled
from swarmfuse.client.site.agent import Holding
from swarmfuse.client.site.manifest import load_manifest
from swarmfuse.client.site.shards import privacy_path, write_release

EXTRACTOR = hashlib.sha256(b"text.onnx").hexdigest()
DATASET = hashlib.sha256(b"manifest").hexdigest()


def terms(epsilon: str = "4", projection_dim: int = 64) -> PrivacyTerms:
    return PrivacyTerms(mechanism="gaussian", kinds=["features"], delta="0.00001", release_epsilon=epsilon,
                        budget_epsilon="8", budget_sigma=noise_multiplier(8.0, 1e-5), clip="2.5",
                        projection_dim=projection_dim)


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 4.0, 8.0])
def test_the_accountants_epsilon_for_the_chosen_sigma_is_at_most_the_target_and_within_one_percent(
        epsilon: float) -> None:
    sigma = float(noise_multiplier(epsilon, 1e-5))
    assert 0.99 * epsilon <= epsilon_of(sigma, 1e-5) <= epsilon
    assert sigma > float(noise_multiplier(epsilon * 2, 1e-5))  # less privacy, less noise


def test_noise_has_the_stated_size_and_every_vector_the_clip_norm() -> None:
    rng = np.random.default_rng(7)
    features = rng.standard_normal((3000, 400)).astype(np.float32) * rng.uniform(0.1, 30, size=(3000, 1))
    made = release(features, terms(), EXTRACTOR, DATASET, rng=np.random.default_rng(11))
    matrix = projection(400, 64, EXTRACTOR)
    clean = scaled(features, matrix, 2.5)
    assert np.allclose(np.linalg.norm(clean, axis=1), 2.5)
    noise = made.features.astype(np.float64) - clean
    expected = float(made.record.noise_multiplier) * 2.5
    assert abs(noise.std() - expected) <= 0.02 * expected
    record = made.record
    assert (record.projection_dim, record.projection_sha256, record.dataset_sha256) == (
        64, projection_sha256(matrix), DATASET)
    assert float(record.epsilon) <= 4 and record.accountant.startswith("dp-accounting 0.6.0")
    # the projection is the extractor's: the same hash draws the same matrix, another hash another one
    assert np.array_equal(matrix, projection(400, 64, EXTRACTOR))
    assert not np.array_equal(matrix, projection(400, 64, hashlib.sha256(b"image.onnx").hexdigest()))


@dataclass
class Source:
    sha256: str = EXTRACTOR
    feature_dim: int = 4
    backbone: str = "test"
    calls: int = 0

    def extract(self, values: list[str], base: Path | None) -> Any:
        self.calls += 1
        return np.array([[len(v), v.count("a"), 1.0, 2.0] for v in values], dtype=np.float32)


def test_the_same_rows_are_released_again_from_the_cache_without_fresh_noise(tmp_path: Path) -> None:
    manifest = tmp_path / "texts.csv"
    manifest.write_text("entity_id,text\ne1,banana\ne2,apple pie\ne3,cherry\n")
    source = Source()
    holding = Holding("text", load_manifest(manifest, "text"), source)
    first, second = tmp_path / "r1" / "features.npy", tmp_path / "r2" / "features.npy"
    made = write_release(first, holding, ["e1", "e3"], terms(projection_dim=3), DATASET, tmp_path / "releases")
    again = write_release(second, holding, ["e1", "e3"], terms(projection_dim=3), DATASET, tmp_path / "releases")
    assert first.read_bytes() == second.read_bytes() and made == again and source.calls == 1
    assert privacy_path(second).read_bytes() == privacy_path(first).read_bytes()
    other = write_release(tmp_path / "r3" / "features.npy", holding, ["e1", "e2"], terms(projection_dim=3), DATASET,
                          tmp_path / "releases")
    assert source.calls == 2 and other.noise_multiplier == made.noise_multiplier
    assert np.load(first).shape == (2, 3)
