"""All settings in one place: one dataclass, defaults that work from the project root,
overridable by FACEREC_* environment variables and by CLI flags."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
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

    # TensorFlow threads per process (0: TensorFlow's default, all cores). With several
    # worker processes on few cores, 1 each is faster than sharing (DESIGN.md §5).
    tf_threads: int = 0

    # Detection.
    min_face_size: int = 20
    detect_max_side: int = 1024
    max_pixels: int = 40_000_000  # decompression-bomb guard (40 MP)
    max_upload_bytes: int = 16 * 1024 * 1024

    # Enrollment.
    reject_duplicates: bool = False  # flag (default) or reject photos matching another user
    batch_size: int = 16

    # Index (chosen from the ANN study in BENCHMARKS.md): up to exact_search_limit faces,
    # search is exact numpy (faster than Annoy there, and exact). Above it, the approximate
    # index: "auto" (Annoy up to facerec.index.AUTO_ANNOY_MAX faces for the dimension,
    # hnswlib above), "annoy" or "hnsw"; `candidates` of its results are reranked exactly.
    # Annoy with 100 trees and search_k 20,000 reaches recall@1 0.996 at 3.5 ms at 1M × 128.
    # hnswlib loads a private copy of its index into every process (no mmap sharing).
    exact_search_limit: int = 20_000
    index_engine: str = "auto"
    annoy_trees: int = 100
    annoy_search_k: int = 20_000
    candidates: int = 100
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 200  # searches use max(hnsw_ef, candidates)

    # HTTP API (facerec.api). Keys are generated into api_keys_path (mode 0600) at first
    # start; FACEREC_AUTH_ENABLED=false turns them off, for local development only.
    api_keys_path: Path = PROJECT_ROOT / "var" / "api_keys.json"
    auth_enabled: bool = True
    # Flask-Limiter syntax, per client address and per worker process; "" turns it off.
    rate_limit: str = "600 per minute"
    rate_limit_storage: str = "memory://"
    max_top_k: int = 50
    # The API rebuilds the index in the background once this many faces are not yet in it.
    delta_rebuild_limit: int = 1000
    host: str = "127.0.0.1"
    port: int = 5000

    # Live video (POST /frames, the camera page): identities voted over the last
    # frames_vote_window identifications of a face; a settled face is identified again
    # every frames_reverify_every frames (else only tracked). Streams live in each worker's
    # memory: at most frames_max_streams, forgotten after frames_idle_seconds.
    frames_vote_window: int = 5
    frames_reverify_every: int = 5
    frames_max_streams: int = 256
    frames_idle_seconds: float = 30.0
    # Per client address and worker, instead of rate_limit: a camera sends many frames.
    frames_rate_limit: str = "1800 per minute"

    @property
    def effective_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        from facerec.embedder import MODELS

        return MODELS[self.model].default_threshold

    def replace(self, **changes) -> Settings:
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes)


def config_file(environ: dict | None = None) -> Path:
    """The optional TOML settings file: FACEREC_CONFIG, else facerec.toml at the root."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("FACEREC_CONFIG", PROJECT_ROOT / "facerec.toml"))


_KINDS = {"Path": Path, "int": int, "float": float, "bool": parse_bool, "str": str,
          "float | None": float}


def _convert(f: dataclasses.Field, raw):
    """A value from the TOML file (typed) or the environment (text) to the field's type."""
    kind = _KINDS.get(str(f.type), str)
    if kind is parse_bool:
        return raw if isinstance(raw, bool) else parse_bool(str(raw))
    return kind(raw)


def settings_from_env(environ: dict | None = None, **overrides) -> Settings:
    """Settings from the TOML file (if any), then FACEREC_<FIELD> variables (e.g.
    FACEREC_DB_PATH), then `overrides` (CLI flags; None means not given)."""
    import tomllib

    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values = {}
    path = config_file(environ)
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from None
        for key, raw in data.items():
            if key not in fields:
                raise ValueError(f"{path}: unknown setting {key!r}")
            try:
                values[key] = _convert(fields[key], raw)
            except ValueError as exc:
                raise ValueError(f"{path}: {key} = {raw!r}: {exc}") from None
    for name, f in fields.items():
        raw = environ.get(f"FACEREC_{name.upper()}")
        if raw is None:
            continue
        try:
            values[name] = _convert(f, raw)
        except ValueError as exc:
            raise ValueError(f"FACEREC_{name.upper()}={raw!r}: {exc}") from None
    settings = Settings(**values)
    return settings.replace(**overrides)


def write_setting(key: str, value, path: Path | None = None) -> Path:
    """Set `key = value` in the TOML settings file (created if missing), keeping the
    other lines, atomically. Used e.g. by the evaluation to store a chosen threshold."""
    if key not in {f.name for f in dataclasses.fields(Settings)}:
        raise ValueError(f"unknown setting {key!r}")
    path = Path(path) if path else config_file()
    if isinstance(value, bool):
        literal = str(value).lower()
    elif isinstance(value, (int, float)):
        literal = repr(value)
    else:
        literal = json.dumps(str(value))  # a JSON string is a valid TOML basic string
    lines = path.read_text().splitlines() if path.is_file() else []
    lines = [line for line in lines if line.split("=")[0].strip() != key]
    lines.append(f"{key} = {literal}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
