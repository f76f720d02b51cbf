"""Synthetic face-like embeddings for the ANN study: clustered unit vectors.

Each identity has a centre drawn uniformly on the unit sphere; each of its vectors is
the centre plus isotropic Gaussian noise of total norm ≈ s (components N(0, s²/dim)),
L2-normalised, with s drawn per vector from U(0.5, 0.8). Two vectors of one identity
then have cosine ≈ 1/√((1+s₁²)(1+s₂²)) ≈ 0.6–0.8, and vectors of different identities
≈ 0 ± 1/√dim: the shape of real FaceNet scores (genuine ~0.6–0.9, impostor ~0–0.3,
DESIGN.md §6), where the nearest neighbour of a new photo is normally another photo of
the same person. `describe()` measures both distributions for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_LOW, NOISE_HIGH = 0.5, 0.8


@dataclass(frozen=True)
class Clustered:
    vectors: np.ndarray    # n × dim float32, unit rows (the index)
    identity: np.ndarray   # n int32, identity of each row
    queries: np.ndarray    # q × dim float32, new vectors of enrolled identities
    query_identity: np.ndarray


def _members(rng: np.random.Generator, centres: np.ndarray, owner: np.ndarray) -> np.ndarray:
    dim = centres.shape[1]
    out = np.empty((len(owner), dim), np.float32)
    for start in range(0, len(owner), 100_000):  # chunks keep the peak memory low
        ids = owner[start:start + 100_000]
        scale = rng.uniform(NOISE_LOW, NOISE_HIGH, size=(len(ids), 1)).astype(np.float32)
        noise = rng.standard_normal((len(ids), dim), dtype=np.float32) * (scale / np.sqrt(dim))
        block = centres[ids] + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + len(ids)] = block
    return out


def clustered(n: int, dim: int, per_identity: int = 10, queries: int = 1000,
              seed: int = 0) -> Clustered:
    """n vectors in n/per_identity identities, plus `queries` fresh vectors of randomly
    chosen identities (a probe photo of an enrolled person, not itself in the index)."""
    rng = np.random.default_rng(seed)
    identities = max(1, n // per_identity)
    centres = rng.standard_normal((identities, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    identity = (np.arange(n) % identities).astype(np.int32)
    vectors = _members(rng, centres, identity)
    query_identity = rng.integers(0, identities, size=queries).astype(np.int32)
    return Clustered(vectors, identity, _members(rng, centres, query_identity), query_identity)


def describe(data: Clustered, pairs: int = 20_000, seed: int = 1) -> dict:
    """Median and 1st/99th percentiles of genuine and impostor cosine on sampled pairs."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, len(data.queries), pairs)
    # Genuine: a query against a row of its own identity (rows are laid out round-robin).
    identities = int(data.identity.max()) + 1
    members = (len(data.identity) + identities - 1) // identities
    slot = rng.integers(0, members, pairs)
    rows = data.query_identity[q] + slot * identities
    ok = rows < len(data.identity)
    genuine = np.einsum("ij,ij->i", data.queries[q[ok]], data.vectors[rows[ok]])
    other = rng.integers(0, len(data.vectors), pairs)
    keep = data.identity[other] != data.query_identity[q]
    impostor = np.einsum("ij,ij->i", data.queries[q[keep]], data.vectors[other[keep]])

    def stats(x):
        return {"p01": float(np.percentile(x, 1)), "median": float(np.median(x)),
                "p99": float(np.percentile(x, 99))}

    return {"genuine": stats(genuine), "impostor": stats(impostor)}
