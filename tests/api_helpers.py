"""Helpers shared by the API tests: photos as upload bytes, keys, request shortcuts."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from PIL import Image

from tests.fakes import fake_photo


def png_bytes(identity: int, variant: int = 0, *, faces: int = 1) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(fake_photo(identity, variant, faces=faces)).save(buffer, format="PNG")
    return buffer.getvalue()


def read_keys(path: Path) -> dict[str, str]:
    return {k["scope"]: k["key"] for k in json.loads(Path(path).read_text())["keys"]}


def multipart(data: bytes, field: str = "photo", **fields) -> dict:
    return {field: (io.BytesIO(data), "upload.png"), **fields}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
