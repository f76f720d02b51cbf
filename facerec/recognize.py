"""Photo → who is in it: every face with its box and its best-matching users."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facerec.faces import Face
from facerec.index import Candidate, FaceIndex
from facerec.pipeline import Pipeline


@dataclass(frozen=True)
class UserMatch:
    """A user's best face for one query face."""

    user_id: str
    face_id: int
    similarity: float  # cosine

    def to_json(self) -> dict:
        return {"user_id": self.user_id, "face_id": self.face_id,
                "similarity_score": round(self.similarity, 6)}


@dataclass
class FaceResult:
    face: Face
    matches: list[UserMatch]  # best user first, one entry per user
    threshold: float
    ambiguity_margin: float
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def best(self) -> UserMatch | None:
        return self.matches[0] if self.matches else None

    @property
    def margin(self) -> float | None:
        """Best user's score minus the second-best user's (None with fewer than two)."""
        if len(self.matches) < 2:
            return None
        return self.matches[0].similarity - self.matches[1].similarity

    @property
    def ambiguous(self) -> bool:
        """Two users above the threshold within the margin of each other."""
        return (len(self.matches) >= 2 and self.matches[1].similarity >= self.threshold
                and self.margin < self.ambiguity_margin)

    @property
    def recognized(self) -> bool:
        return (self.best is not None and self.best.similarity >= self.threshold
                and not self.ambiguous)

    def to_json(self) -> dict:
        best = self.best if self.recognized else None
        return {
            **self.face.to_json(),
            "recognized": self.recognized,
            "user_id": best.user_id if best else None,
            "face_id": best.face_id if best else None,
            "similarity_score": round(self.best.similarity, 6) if self.best else None,
            "margin": None if self.margin is None else round(self.margin, 6),
            "ambiguous": self.ambiguous,
            "matches": [m.to_json() for m in self.matches],
        }


def group_by_user(candidates: list[Candidate], top_k: int) -> list[UserMatch]:
    """Each user's best face, best user first."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.user_id not in best or c.similarity > best[c.user_id].similarity:
            best[c.user_id] = c
    ranked = sorted(best.values(), key=lambda c: -c.similarity)[:top_k]
    return [UserMatch(c.user_id, c.face_id, c.similarity) for c in ranked]


def match_embeddings(index: FaceIndex, embeddings: np.ndarray, top_k: int = 5
                     ) -> list[list[UserMatch]]:
    if len(embeddings) == 0:
        return []
    return [group_by_user(hits, top_k) for hits in index.search(embeddings)]


def recognize(image: np.ndarray, pipeline: Pipeline, index: FaceIndex, *,
              threshold: float, top_k: int = 5, ambiguity_margin: float = 0.05,
              max_faces: int = 32) -> list[FaceResult]:
    """Every face in `image` (largest first) with its best-matching users.

    Candidates come from the index's current generation (Annoy, or exact below a size)
    plus the faces enrolled since, reranked by exact cosine and grouped by user."""
    analyzed = pipeline.analyze(image, second_pass=True, max_faces=max_faces)
    matches = match_embeddings(index, np.array([a.embedding for a in analyzed]), top_k)
    return [FaceResult(a.face, m, threshold, ambiguity_margin, a.embedding)
            for a, m in zip(analyzed, matches)]
