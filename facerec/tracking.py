"""Per-face tracks across the frames of a live video, and a vote over each track's last
identities, so that a name does not flicker from frame to frame.

Pure logic: boxes in, decisions out; no models, no Flask (facerec.live runs the models
around it, facerec.api.frames serves it).

- A detection continues the track whose last box overlaps it most (IoU at least
  `match_iou`, greedy, best pairs first); an unmatched detection starts a new track; a
  track not seen for more than `max_missed` frames ends.
- Every identification of a track (embedding + index search) casts one vote: a user id,
  or None for "nobody known". The track's decision is the label holding more than half of
  its last `window` votes; with no such label it is "pending" while the window is not
  yet full and "unknown" once it is (the identity keeps changing: trust none of it).
- A track is identified on every frame until it is decided, and again whenever its
  latest vote disagrees with the decision, its box has moved (IoU with the box at the
  last identification below `still_iou`) or `reverify_every` frames have passed. On the
  other frames it is only tracked: detection runs, embedding and search do not.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass, field

Box = tuple[int, int, int, int]  # x1, y1, x2, y2

RECOGNIZED = "recognized"
UNKNOWN = "unknown"
PENDING = "pending"


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class TrackerConfig:
    window: int = 5  # identities voted over
    reverify_every: int = 5  # a decided, still track is identified again after this many frames
    match_iou: float = 0.3  # a detection continues a track at this overlap or more
    still_iou: float = 0.6  # below this overlap with the last identified box, identify again
    max_missed: int = 2  # frames a track survives without a detection

    def __post_init__(self):
        if self.window < 1 or self.reverify_every < 1 or self.max_missed < 0:
            raise ValueError("window and reverify_every must be at least 1, max_missed >= 0")
        if not (0 < self.match_iou <= 1 and 0 < self.still_iou <= 1):
            raise ValueError("match_iou and still_iou must be in (0, 1]")

    @property
    def quorum(self) -> int:
        """Votes a label needs: more than half of the window."""
        return self.window // 2 + 1


@dataclass(frozen=True)
class Vote:
    user_id: str | None  # None: no enrolled user matched (or two matched equally well)
    score: float | None  # similarity of the best user, if any


@dataclass(frozen=True)
class Decision:
    status: str  # RECOGNIZED, UNKNOWN or PENDING
    user_id: str | None  # the recognized user; while pending, the leading candidate
    score: float | None  # mean similarity of the votes for user_id
    votes: int  # votes for the decided (or leading) label
    cast: int  # votes in the window

    @property
    def decided(self) -> bool:
        return self.status != PENDING


@dataclass
class Track:
    track_id: int
    box: Box
    window: int
    votes: deque[Vote] = field(init=False)
    identified_box: Box | None = None  # box at the last identification
    since_identified: int = 0  # frames since the last identification
    missed: int = 0  # consecutive frames without a detection
    age: int = 1  # frames the track has been seen in

    def __post_init__(self):
        self.votes = deque(maxlen=self.window)

    def decision(self, quorum: int) -> Decision:
        if not self.votes:
            return Decision(PENDING, None, None, 0, 0)
        counts = Counter(v.user_id for v in self.votes)
        top = max(counts.values())
        # Ties go to the label voted most recently.
        leader = next(v.user_id for v in reversed(self.votes) if counts[v.user_id] == top)
        scores = [v.score for v in self.votes if v.user_id == leader and v.score is not None]
        score = sum(scores) / len(scores) if scores and leader is not None else None
        cast = len(self.votes)
        if top >= quorum:
            return Decision(RECOGNIZED if leader is not None else UNKNOWN, leader, score, top, cast)
        if cast < self.window:
            return Decision(PENDING, leader, score, top, cast)
        return Decision(UNKNOWN, None, None, top, cast)


@dataclass(frozen=True)
class Assignment:
    """One detection of the current frame, in detection order."""

    track: Track
    identify: bool  # embed and search this face now (else: tracked only)
    new: bool  # the detection started a new track


class Tracker:
    """The tracks of one video stream. Not thread-safe: one frame at a time per stream."""

    def __init__(self, config: TrackerConfig | None = None, ids: itertools.count | None = None):
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self.frames = 0
        self._ids = ids if ids is not None else itertools.count(1)

    def step(self, boxes: list[Box]) -> list[Assignment]:
        """Match this frame's detections to the tracks; say which need identifying."""
        cfg = self.config
        self.frames += 1
        pairs = sorted(((iou(t.box, b), ti, bi) for ti, t in enumerate(self.tracks)
                        for bi, b in enumerate(boxes)), reverse=True)
        track_of: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < cfg.match_iou:
                break
            if ti in used or bi in track_of:
                continue
            used.add(ti)
            track_of[bi] = self.tracks[ti]
        for ti, track in enumerate(self.tracks):
            if ti not in used:
                track.missed += 1
        self.tracks = [t for ti, t in enumerate(self.tracks)
                       if ti in used or t.missed <= cfg.max_missed]

        assignments = []
        for bi, box in enumerate(boxes):
            track = track_of.get(bi)
            if track is None:
                track = Track(next(self._ids), tuple(box), cfg.window)
                self.tracks.append(track)
                assignments.append(Assignment(track, True, True))
                continue
            track.box = tuple(box)
            track.missed = 0
            track.age += 1
            track.since_identified += 1
            assignments.append(Assignment(track, self._needs_identity(track), False))
        return assignments

    def _needs_identity(self, track: Track) -> bool:
        cfg = self.config
        decision = track.decision(cfg.quorum)
        if not decision.decided or track.identified_box is None:
            return True
        if track.votes[-1].user_id != decision.user_id:
            return True  # the latest look disagrees: look again until it settles
        if track.since_identified >= cfg.reverify_every:
            return True
        return iou(track.box, track.identified_box) < cfg.still_iou

    def record(self, track: Track, vote: Vote) -> Decision:
        """Add an identification of `track` on the current frame."""
        track.votes.append(vote)
        track.identified_box = track.box
        track.since_identified = 0
        return track.decision(self.config.quorum)

    def decision(self, track: Track) -> Decision:
        return track.decision(self.config.quorum)
