"""The embedder contract (unit-norm float32 rows, batch-independent) on the real
weights, and the clear error when a weight file is missing or corrupt."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from facerec.embedder import CROP_SIZE, load_embedder, prewhiten
from facerec.errors import ModelUnavailable
from facerec.weights import SETUP_COMMAND, WEIGHTS, verified_weight_path


def test_missing_weight_file_names_the_fix(tmp_path):
    with pytest.raises(ModelUnavailable, match=f"missing.*{SETUP_COMMAND} --model facenet128"):
        verified_weight_path("facenet128", tmp_path)


def test_corrupt_weight_file_names_the_fix(tmp_path):
    (tmp_path / WEIGHTS["facenet512"].filename).write_bytes(b"truncated")
    with pytest.raises(ModelUnavailable, match=f"corrupt.*{SETUP_COMMAND} --model facenet512"):
        verified_weight_path("facenet512", tmp_path)


def test_unknown_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        load_embedder("facenet999", tmp_path)


def test_prewhiten_standardises_each_crop():
    crops = np.random.default_rng(0).integers(0, 255, (3, CROP_SIZE, CROP_SIZE, 3)).astype(np.uint8)
    x = prewhiten(crops)
    assert np.allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    assert np.allclose(x.std(axis=(1, 2, 3)), 1, atol=1e-3)


@pytest.mark.models
@pytest.mark.parametrize("model, dim", [("facenet128", 128), ("facenet512", 512)])
def test_embedder_contract(model, dim, real_pipeline):
    from facerec.config import Settings

    embedder = (real_pipeline.embedder if model == "facenet128"
                else load_embedder(model, Settings().models_dir))
    crops = np.random.default_rng(1).integers(0, 255, (19, CROP_SIZE, CROP_SIZE, 3)).astype(np.uint8)
    batch = embedder.embed(crops)
    assert batch.shape == (19, dim) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-5)
    single = embedder.embed(crops[7:8])
    assert np.allclose(single[0], batch[7], atol=1e-5)
    assert embedder.embed(crops[:0]).shape == (0, dim)


def test_weights_are_copied_not_required_in_place(tmp_path):
    """A models dir elsewhere works as long as the verified file is there."""
    from facerec.config import Settings

    source = Settings().models_dir / WEIGHTS["facenet128"].filename
    shutil.copy(source, tmp_path / source.name)
    assert verified_weight_path("facenet128", tmp_path) == tmp_path / source.name
