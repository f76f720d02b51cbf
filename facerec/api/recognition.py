"""1:N recognition (/upload_photo), 1:1 verification (/verify) and photo-to-photo
comparison (/compare)."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, g

from facerec import store
from facerec.api.auth import require
from facerec.api.inputs import query_float, query_int, read_field, read_photo
from facerec.api.services import db, services
from facerec.errors import InvalidUserId, NoFace, NotFound
from facerec.faces import Face
from facerec.imaging import decode_image
from facerec.naming import is_valid_user_id
from facerec.recognize import FaceResult, recognize

bp = Blueprint("recognition", __name__)


def _threshold() -> float:
    return query_float("threshold", services().threshold, -1.0, 1.0)


def _photo(fields: tuple[str, ...] = ("photo", "file", "image"), label: str = "photo"
           ) -> np.ndarray:
    s = services().settings
    return decode_image(read_photo(s.max_upload_bytes, fields, label), s.max_pixels)


def _largest_face(image: np.ndarray, label: str = "photo") -> tuple[Face, np.ndarray, int]:
    """The largest face, its embedding, and how many faces were found."""
    pipeline = services().pipeline()
    faces = pipeline.detect(image)
    g.faces_found = g.get("faces_found", 0) + len(faces)
    if not faces:
        raise NoFace(f"no face found in the {label}")
    return faces[0], pipeline.embed([(image, faces[0])])[0], len(faces)


def _face_json(result: FaceResult, profiles: dict[str, dict]) -> dict:
    body = result.to_json()
    body["profile"] = profiles.get(body["user_id"]) if result.recognized else None
    return body


@bp.post("/upload_photo")
@require("recognize")
def upload_photo():
    s = services()
    threshold = _threshold()
    top_k = query_int("top_k", s.settings.top_k, 1, s.settings.max_top_k)
    image = _photo()
    results = recognize(image, s.pipeline(), s.index(), threshold=threshold, top_k=top_k,
                        ambiguity_margin=s.settings.ambiguity_margin)
    g.faces_found = len(results)
    if not results:
        raise NoFace("no face found in the photo")
    profiles = store.get_profiles(db(), sorted({r.best.user_id for r in results if r.recognized}))
    faces = [_face_json(r, profiles) for r in results]
    main = faces[0]
    return {
        "recognized": main["recognized"],
        "user_id": main["user_id"],
        "face_id": main["face_id"],
        "similarity_score": main["similarity_score"],
        "margin": main["margin"],
        "ambiguous": main["ambiguous"],
        "profile": main["profile"],
        "threshold": threshold,
        "faces": faces,
        "model": s.pipeline().model.name,
        "index_generation": s.index().generation,
    }


@bp.post("/verify")
@require("recognize")
def verify():
    s = services()
    threshold = _threshold()
    user_id = read_field("user_id")
    if not user_id:
        raise InvalidUserId("missing `user_id`: the user the photo claims to be")
    if not is_valid_user_id(user_id):
        raise InvalidUserId("invalid user id: use 1-64 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")
    if store.get_user(db(), user_id) is None:
        raise NotFound(f"user {user_id} not found")
    face_ids, vectors = store.user_embeddings(db(), user_id, s.settings.model)
    if len(face_ids) == 0:
        raise NotFound(f"user {user_id} has no enrolled face to verify against",
                       reason="no_enrolled_face")
    face, embedding, found = _largest_face(_photo())
    sims = vectors @ embedding
    best = int(np.argmax(sims))
    score = float(sims[best])
    return {
        "match": score >= threshold,
        "user_id": user_id,
        "similarity_score": round(score, 6),
        "threshold": threshold,
        "face_id": int(face_ids[best]),
        "face": face.to_json(),
        "faces_found": found,
    }


@bp.post("/compare")
@require("recognize")
def compare():
    threshold = _threshold()
    first = _photo(("photo1", "file1", "image1"), "first photo")
    second = _photo(("photo2", "file2", "image2"), "second photo")
    face1, vec1, found1 = _largest_face(first, "first photo")
    face2, vec2, found2 = _largest_face(second, "second photo")
    score = float(vec1 @ vec2)
    return {
        "same_person": score >= threshold,
        "similarity_score": round(score, 6),
        "threshold": threshold,
        "faces": [face1.to_json(), face2.to_json()],
        "faces_found": [found1, found2],
    }
