"""Face engines under evaluation: the service's own pipeline, and optionally dlib's
face_recognition, each turning a photo into (number of faces, vector of the largest)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

from facerec.errors import FaceRecError
from facerec.evaluation.data import Dataset
from facerec.imaging import load_image_file
from facerec.pipeline import Pipeline

FACE_RECOGNITION_INSTALL = (
    "face_recognition is not installed; it is an optional extra for the comparison: "
    "`.venv/bin/pip install -r requirements-eval.txt && "
    ".venv/bin/pip install --no-deps face-recognition==1.3.0` "
    "(--no-deps: its `dlib` requirement would compile dlib from source; dlib-bin ships it built)")


class EngineUnavailable(RuntimeError):
    pass


class Engine(Protocol):
    name: str
    score_name: str          # what a score is, for the report
    default_threshold: float  # in threshold units (see to_threshold)

    def largest_face(self, image: np.ndarray) -> tuple[int, np.ndarray | None]: ...

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    def to_threshold(self, score: float) -> float: ...


class ServicePipeline:
    """The pipeline every service process uses (facerec.pipeline): MTCNN with its second,
    permissive pass, then FaceNet on the largest face. Scores are cosine similarities,
    thresholds are what `threshold` in the settings means."""

    score_name = "cosine similarity (accept if ≥ threshold)"

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.name = f"facerec ({pipeline.model.name})"
        self.default_threshold = pipeline.model.default_threshold

    def largest_face(self, image):
        faces = self.pipeline.detect(image)  # largest first, second pass as the service
        if not faces:
            return 0, None
        return len(faces), self.pipeline.embed([(image, faces[0])])[0]

    def similarity(self, a, b):
        return np.asarray(a, np.float32) @ np.asarray(b, np.float32).T

    def to_threshold(self, score):
        return float(score)


class FaceRecognition:
    """dlib's face_recognition with its defaults: HOG detector (upsample 1), 5-point
    landmarks, 128-d ResNet encodings, euclidean distance (its tolerance is 0.6). Scores
    are negative distances so that higher means more alike; thresholds are distances."""

    name = "face_recognition (dlib)"
    score_name = "−euclidean distance (accept if distance ≤ threshold)"
    default_threshold = 0.6

    def __init__(self):
        try:
            import face_recognition
        except ImportError:
            raise EngineUnavailable(FACE_RECOGNITION_INSTALL) from None
        self._fr = face_recognition

    def largest_face(self, image):
        boxes = self._fr.face_locations(image)  # (top, right, bottom, left)
        if not boxes:
            return 0, None
        largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        return len(boxes), np.asarray(self._fr.face_encodings(image, [largest])[0], np.float32)

    def similarity(self, a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return -np.sqrt(np.maximum(squared, 0))

    def to_threshold(self, score):
        return -float(score)


@dataclass
class Embeddings:
    """One engine's view of every photo of a dataset."""

    engine: str
    vectors: np.ndarray      # photos × dim; NaN rows where no vector was made
    face_counts: np.ndarray  # faces found per photo; −1: the file could not be read
    seconds: np.ndarray      # detection + embedding per photo (NaN if unreadable)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def found(self) -> np.ndarray:
        return self.face_counts > 0


def _warm_up(dataset: Dataset, engine: Engine) -> None:
    """One untimed photo first: compiled graphs trace on their first call."""
    for photo in dataset.photos[:5]:
        try:
            engine.largest_face(load_image_file(photo.path))
            return
        except FaceRecError:
            continue


def embed_photos(dataset: Dataset, engine: Engine, *, progress: bool = True) -> Embeddings:
    """Run the engine once per photo. Decoding (the service's own, with EXIF orientation)
    is not timed; detection and embedding of the largest face are, after a warm-up."""
    vectors: list[np.ndarray | None] = []
    counts, seconds, errors = [], [], {}
    _warm_up(dataset, engine)
    for n, photo in enumerate(tqdm(dataset.photos, desc=engine.name, unit="photo",
                                   disable=not progress)):
        try:
            image = load_image_file(photo.path)
        except FaceRecError as exc:
            vectors.append(None)
            counts.append(-1)
            seconds.append(np.nan)
            errors[n] = exc.message
            continue
        started = time.perf_counter()
        count, vector = engine.largest_face(image)
        seconds.append(time.perf_counter() - started)
        counts.append(count)
        vectors.append(vector)
    dim = next((len(v) for v in vectors if v is not None), 1)
    matrix = np.full((len(vectors), dim), np.nan, np.float32)
    for n, v in enumerate(vectors):
        if v is not None:
            matrix[n] = v
    return Embeddings(engine.name, matrix, np.array(counts, int), np.array(seconds), errors)
