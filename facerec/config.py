"""All settings in one place: one dataclass, defaults that work from the project root,
overridable by FACEREC_* environment variables and by CLI flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def parse_bool(text: str) -> bool:
    """'false' must mean False (bool('false') is True)."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r} (use true/false)")


@dataclass
class Settings:
    photos_dir: Path = PROJECT_ROOT / "data_foto"
    db_path: Path = PROJECT_ROOT / "var" / "facerec.db"
    index_dir: Path = PROJECT_ROOT / "var" / "index"
    models_dir: Path = PROJECT_ROOT / "models"

    # Embedding model: "facenet128" (default, measured better here) or "facenet512".
    model: str = "facenet128"
    # Cosine similarity at or above which a face counts as the same person. None means
    # the chosen model's measured default (facerec.embedder.MODELS).
    threshold: float | None = None
    # Two users scoring within this margin of each other make a face ambiguous.
    ambiguity_margin: float = 0.05
    top_k: int = 5

    # Detection.
    min_face_size: int = 20
    detect_max_side: int = 1024
    max_pixels: int = 40_000_000  # decompression-bomb guard (40 MP)
    max_upload_bytes: int = 16 * 1024 * 1024

    # Enrollment.
    reject_duplicates: bool = False  # flag (default) or reject photos matching another user
    batch_size: int = 16

    # Index: below exact_search_limit faces, search is exact numpy (faster and exact).
    annoy_trees: int = 50
    annoy_search_k: int = 20_000
    exact_search_limit: int = 50_000
    candidates: int = 100  # Annoy candidates reranked exactly

    extra: dict = field(default_factory=dict)

    @property
    def effective_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        from facerec.embedder import MODELS

        return MODELS[self.model].default_threshold

    def replace(self, **changes) -> Settings:
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes)


def settings_from_env(environ: dict | None = None, **overrides) -> Settings:
    """Settings from FACEREC_<FIELD> variables (e.g. FACEREC_DB_PATH), then overrides."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(f"FACEREC_{f.name.upper()}")
        if raw is None or f.name == "extra":
            continue
        kind = {"Path": Path, "int": int, "float": float, "bool": parse_bool, "str": str,
                "float | None": float}.get(str(f.type), str)
        try:
            values[f.name] = kind(raw)
        except ValueError as exc:
            raise ValueError(f"FACEREC_{f.name.upper()}={raw!r}: {exc}") from None
    settings = Settings(**values)
    return settings.replace(**overrides)
