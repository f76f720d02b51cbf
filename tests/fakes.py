"""A fake detector and embedder for fast tests: synthetic photos whose "identity" is a
pattern of coloured blocks. Same identity → nearly the same vector; another identity →
a nearly orthogonal one. The enrollment, index and API logic run for real around them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facerec.embedder import CROP_SIZE, ModelInfo, l2_normalise
from facerec.faces import Face
from facerec.pipeline import Pipeline

FAKE_MODEL = ModelInfo("fake", 48, 0.8, "test embedder: 4×4 colour blocks, centred")
SIDE = 64
TWO_FACES_MARK = (255, 0, 255)  # top-left pixel: the photo holds two faces
NO_FACE_MARK = (0, 0, 0)  # all-black photo: no face


def identity_pattern(identity: int) -> np.ndarray:
    rng = np.random.default_rng(identity)
    return rng.integers(30, 226, (4, 4, 3)).astype(np.float64)


def fake_photo(identity: int, variant: int = 0, *, faces: int = 1, side: int = SIDE) -> np.ndarray:
    """An RGB uint8 photo of `identity`; variants differ by a little noise."""
    if faces == 0:
        return np.zeros((side, side, 3), np.uint8)
    blocks = identity_pattern(identity)
    noise = np.random.default_rng(10_000 + variant).normal(0, 4, blocks.shape)
    image = np.kron(np.clip(blocks + noise, 0, 255), np.ones((side // 4, side // 4, 1)))
    image = image.astype(np.uint8)
    if faces == 2:
        image[0, 0] = TWO_FACES_MARK
    return image


def save_photo(path: Path, identity: int, variant: int = 0, *, faces: int = 1) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(fake_photo(identity, variant, faces=faces)).save(path, format="PNG")
    return path


class FakeDetector:
    def __init__(self):
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        h, w = image.shape[:2]
        if image.max() == 0:
            return []
        whole = Face((0, 0, w, h), 0.99, {"left_eye": (w // 3, h // 3)})
        if tuple(image[0, 0]) == TWO_FACES_MARK:
            return [whole, Face((0, 0, w // 4, h // 4), 0.9, {})]
        return [whole]

    def detect_permissive(self, image: np.ndarray) -> list[Face]:
        return self.detect(image)


class FakeEmbedder:
    info = FAKE_MODEL

    def __init__(self):
        self.calls = 0

    def embed(self, crops: np.ndarray) -> np.ndarray:
        self.calls += 1
        assert crops.shape[1:] == (CROP_SIZE, CROP_SIZE, 3)
        blocks = crops.reshape(len(crops), 4, CROP_SIZE // 4, 4, CROP_SIZE // 4, 3).mean(axis=(2, 4))
        return l2_normalise(blocks.reshape(len(crops), -1) - 128.0)


def fake_pipeline() -> Pipeline:
    return Pipeline(FakeDetector(), FakeEmbedder())
