"""One frame of a live video → every face with its track and voted identity.

Detection runs on every frame (one pass: the permissive second pass is for tight photo
crops, not camera frames); embedding and index search only for the faces whose track
asks for it (facerec.tracking), batched in one call."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from facerec.faces import Face
from facerec.index import FaceIndex
from facerec.pipeline import Pipeline
from facerec.recognize import FaceResult, match_embeddings
from facerec.tracking import Decision, Tracker, Vote


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    face: Face
    decision: Decision
    identified: bool  # embedded and searched on this frame; False: tracked only
    new_track: bool
    result: FaceResult | None  # this frame's own recognition, when identified

    def to_json(self, profiles: dict[str, dict] | None = None) -> dict:
        d = self.decision
        profile = (profiles or {}).get(d.user_id) if d.user_id else None
        body = {
            "track_id": self.track_id,
            **self.face.to_json(),
            "status": d.status,
            "recognized": d.status == "recognized",
            "user_id": d.user_id,
            "name": (profile or {}).get("name") or d.user_id,
            "similarity_score": None if d.score is None else round(d.score, 6),
            "votes": d.votes,
            "votes_cast": d.cast,
            "identified": self.identified,
            "new_track": self.new_track,
        }
        if self.result is not None:
            best = self.result.best
            body["frame_match"] = {
                "user_id": best.user_id if self.result.recognized else None,
                "similarity_score": round(best.similarity, 6) if best else None,
                "ambiguous": self.result.ambiguous,
            }
        return body


@dataclass(frozen=True)
class FrameResult:
    frame: int  # this stream's frame number, from 1
    faces: list[TrackedFace]  # largest first
    detect_ms: float
    identify_ms: float

    @property
    def identified(self) -> int:
        return sum(f.identified for f in self.faces)

    @property
    def tracked(self) -> int:
        return len(self.faces) - self.identified


def process_frame(image: np.ndarray, tracker: Tracker, pipeline: Pipeline, index: FaceIndex, *,
                  threshold: float, ambiguity_margin: float = 0.05, top_k: int = 5,
                  max_faces: int = 16) -> FrameResult:
    started = time.perf_counter()
    faces = pipeline.detect(image, second_pass=False)[:max_faces]
    assignments = tracker.step([f.box for f in faces])
    detected = time.perf_counter()

    todo = [i for i, a in enumerate(assignments) if a.identify]
    vectors = pipeline.embed([(image, faces[i]) for i in todo])
    matches = match_embeddings(index, vectors, top_k)
    results: dict[int, FaceResult] = {}
    for i, found, vector in zip(todo, matches, vectors):
        result = FaceResult(faces[i], found, threshold, ambiguity_margin, vector)
        best = result.best
        tracker.record(assignments[i].track,
                       Vote(best.user_id if result.recognized else None,
                            best.similarity if best else None))
        results[i] = result
    finished = time.perf_counter()

    tracked = [TrackedFace(a.track.track_id, face, tracker.decision(a.track), i in results,
                           a.new, results.get(i))
               for i, (a, face) in enumerate(zip(assignments, faces))]
    return FrameResult(tracker.frames, tracked, (detected - started) * 1000,
                       (finished - detected) * 1000)
