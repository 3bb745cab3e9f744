"""Several selfies to one identity: consistency check, outlier rejection, spherical mean.

ArcFace embeddings live on the unit sphere; the cosine between two photos of one person is
typically 0.4-0.8 for buffalo_l, and 0.0-0.2 for two different people. A selfie whose median
cosine to the others is under SAME_PERSON_THRESHOLD is probably someone else and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

SAME_PERSON_THRESHOLD = 0.35


class InconsistentSelfiesError(InputError):
    """Selfies that do not show one person."""


@dataclass
class Aggregate:
    embedding: np.ndarray = field(repr=False)  # unit vector
    kept: list[int]
    rejected: list[dict[str, Any]]  # index, median cosine, reason
    weights: list[float]  # normalised, per kept selfie
    pairwise: list[list[float]]  # cosine matrix over all selfies

    def record(self) -> dict[str, Any]:
        kept_sims = [self.pairwise[i][j] for i in self.kept for j in self.kept if i < j]
        return {
            "method": "quality-weighted spherical mean",
            "threshold": SAME_PERSON_THRESHOLD,
            "kept": self.kept,
            "rejected": self.rejected,
            "weights": [round(w, 6) for w in self.weights],
            "pairwise_cosine": [[round(v, 4) for v in row] for row in self.pairwise],
            "mean_cosine": round(float(np.mean(kept_sims)), 4) if kept_sims else None,
            "min_cosine": round(float(np.min(kept_sims)), 4) if kept_sims else None,
        }


def spherical_mean(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean direction of unit vectors (the normalised weighted sum)."""
    total = (vectors * weights[:, None]).sum(axis=0)
    norm = float(np.linalg.norm(total))
    if norm < 1e-8:
        raise InconsistentSelfiesError("the selfies' embeddings cancel out; they cannot be one person")
    return (total / norm).astype(np.float32)


def aggregate(embeddings: np.ndarray, weights: list[float], names: list[str]) -> Aggregate:
    """Combine per-selfie embeddings (rows, unit norm) into one identity."""
    count = len(embeddings)
    sims = embeddings @ embeddings.T
    pairwise = [[float(v) for v in row] for row in sims]
    kept = list(range(count))
    rejected: list[dict[str, Any]] = []
    if count == 2 and sims[0, 1] < SAME_PERSON_THRESHOLD:
        raise InconsistentSelfiesError(
            f"{names[0]} and {names[1]} look like different people (cosine {sims[0, 1]:.2f}; the same person "
            f"is usually above {SAME_PERSON_THRESHOLD}). Add a third selfie so the odd one out can be found, or "
            "remove one")
    if count >= 3:
        medians = [float(np.median(np.delete(sims[i], i))) for i in range(count)]
        for i in range(count):
            if medians[i] < SAME_PERSON_THRESHOLD:
                rejected.append({"index": i, "path": names[i], "median_cosine": round(medians[i], 4),
                                 "reason": f"probably another person (median cosine {medians[i]:.2f} to the "
                                           f"others < {SAME_PERSON_THRESHOLD})"})
        kept = [i for i in range(count) if medians[i] >= SAME_PERSON_THRESHOLD]
        if not kept:
            raise InconsistentSelfiesError("no two selfies look like the same person; check the files: "
                                           + ", ".join(names))
    w = np.array([weights[i] for i in kept], dtype=np.float64)
    w = w / w.sum()
    embedding = spherical_mean(embeddings[kept].astype(np.float64), w)
    return Aggregate(embedding, kept, rejected, [float(x) for x in w], pairwise)
