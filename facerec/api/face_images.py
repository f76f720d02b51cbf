"""GET /users/<id>/faces/<face_id>/image: a small JPEG of one enrolled face, cut from
its stored photo (the manage page shows these)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flask import Blueprint, Response
from PIL import Image

from facerec.api.auth import require
from facerec.api.services import db, services
from facerec.errors import InvalidUserId, NotFound
from facerec.imaging import encode_jpeg, load_image_file
from facerec.naming import is_valid_user_id

bp = Blueprint("face_images", __name__)

THUMBNAIL_SIDE = 160
MARGIN = 0.25  # of the box size, on each side
SQLITE_MAX_INT = 2**63 - 1


def face_thumbnail(image: np.ndarray, box: list[int], side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """The face box plus a margin, clipped to the image, at most `side` px per side."""
    x1, y1, x2, y2 = box
    mx, my = int((x2 - x1) * MARGIN), int((y2 - y1) * MARGIN)
    h, w = image.shape[:2]
    crop = image[max(0, y1 - my):min(h, y2 + my), max(0, x1 - mx):min(w, x2 + mx)]
    thumb = Image.fromarray(crop)
    thumb.thumbnail((side, side))
    return np.asarray(thumb)


@bp.get("/users/<user_id>/faces/<int:face_id>/image")
@require("manage")
def face_image(user_id: str, face_id: int):
    if not is_valid_user_id(user_id):
        raise InvalidUserId("invalid user id: use 1-64 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")
    if face_id > SQLITE_MAX_INT:  # no such face; SQLite could not even bind the number
        raise NotFound(f"user {user_id} has no face {face_id}")
    row = db().execute("SELECT photo_path, bbox FROM faces WHERE face_id = ? AND user_id = ? "
                       "AND active = 1", (face_id, user_id)).fetchone()
    if row is None:
        raise NotFound(f"user {user_id} has no face {face_id}")
    settings = services().settings
    photos = Path(settings.photos_dir).resolve()
    path = (photos / (row["photo_path"] or "")).resolve()
    if not row["photo_path"] or not path.is_relative_to(photos) or not path.is_file():
        raise NotFound(f"the photo of face {face_id} is no longer in the photos folder",
                       reason="photo_missing")
    image = load_image_file(path, settings.max_pixels)
    data = encode_jpeg(face_thumbnail(image, json.loads(row["bbox"])), quality=85)
    # Never cached: after an erasure no copy of the face may stay behind.
    return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})
