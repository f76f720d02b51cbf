"""The detection result shared by the detector, the embedder and the API."""

from __future__ import annotations

from dataclasses import dataclass, field

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    """One detected face, in pixel coordinates of the image that was passed in.

    box is (x1, y1, x2, y2), clipped to the image, x2/y2 exclusive. Only plain Python
    types, so a Face serialises to JSON as is.
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def to_json(self) -> dict:
        x1, y1, x2, y2 = self.box
        return {
            "box": {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1},
            "detection_score": round(self.score, 6),
            "landmarks": {k: list(v) for k, v in self.landmarks.items()},
        }
