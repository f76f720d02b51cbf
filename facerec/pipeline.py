"""The one place models are loaded, and the detect → crop → embed steps every process
shares (convert.py, the watcher, the API, the evaluation), so all of them see faces the
same way."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facerec.config import Settings
from facerec.embedder import Embedder, ModelInfo, crop_face, load_embedder
from facerec.faces import Face

log = logging.getLogger(__name__)


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Face]: ...

    def detect_permissive(self, image: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class EmbeddedFace:
    face: Face
    embedding: np.ndarray


@dataclass
class Pipeline:
    detector: Detector
    embedder: Embedder

    @property
    def model(self) -> ModelInfo:
        return self.embedder.info

    def detect(self, image: np.ndarray, *, second_pass: bool = True) -> list[Face]:
        """Faces, largest first. When none is found and second_pass is set, a more
        permissive pass runs (it finds tight crops where the face fills the image)."""
        faces = self.detector.detect(image)
        if not faces and second_pass:
            faces = self.detector.detect_permissive(image)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def embed(self, items: list[tuple[np.ndarray, Face]]) -> np.ndarray:
        """Embed (image, face) pairs in one batch."""
        if not items:
            return np.zeros((0, self.model.dim), np.float32)
        crops = np.stack([crop_face(image, face) for image, face in items])
        return self.embedder.embed(crops)

    def warm_up(self) -> None:
        """Compile every graph a request can need (pyramid depths, embedding batch shapes)
        now: long-running processes (API workers, the watcher) call this at start so no
        request pays seconds of tracing."""
        if hasattr(self.detector, "warm_up_all_levels"):
            self.detector.warm_up_all_levels()
        image = np.full((480, 640, 3), 128, np.uint8)
        self.detect(image, second_pass=False)
        face = Face((200, 100, 360, 300), 1.0)
        for batch in (1, 2, 3):  # two traced shapes, then TensorFlow generalises the batch
            self.embed([(image, face)] * batch)

    def analyze(self, image: np.ndarray, *, second_pass: bool = True,
                max_faces: int | None = None) -> list[EmbeddedFace]:
        faces = self.detect(image, second_pass=second_pass)[:max_faces]
        vectors = self.embed([(image, face) for face in faces])
        return [EmbeddedFace(face, vector) for face, vector in zip(faces, vectors)]


_loaded: dict[tuple, Pipeline] = {}
_load_lock = threading.Lock()


def load_pipeline(settings: Settings) -> Pipeline:
    """Load the detector and embedder once per process (and per configuration)."""
    key = (settings.model, str(settings.models_dir), settings.min_face_size,
           settings.detect_max_side, settings.batch_size)
    with _load_lock:
        if key not in _loaded:
            from facerec.detector import MTCNNDetector

            log.info("loading models: MTCNN + %s", settings.model)
            if settings.tf_threads:
                _limit_tensorflow_threads(settings.tf_threads)
            embedder = load_embedder(settings.model, settings.models_dir, settings.batch_size)
            detector = MTCNNDetector(min_face_size=settings.min_face_size,
                                     max_side=settings.detect_max_side)
            _loaded[key] = Pipeline(detector, embedder)
        return _loaded[key]


def _limit_tensorflow_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started in this process: keep its setting
        log.warning("TensorFlow already initialised; tf_threads=%d not applied", threads)
