"""Users: profiles, their faces, enrollment of a photo, and erasure."""

from __future__ import annotations

import logging

from flask import Blueprint, g, request

from facerec import store
from facerec.api.auth import require
from facerec.api.inputs import json_body, query_int, read_photo
from facerec.api.services import db, services
from facerec.enroll import enroll_upload
from facerec.erasure import delete_face, erase_user
from facerec.errors import BadRequest, InvalidUserId, NotFound
from facerec.naming import is_valid_user_id

bp = Blueprint("users", __name__)
log = logging.getLogger(__name__)

MAX_PAGE = 500
MAX_FIELDS = 50
SCALARS = (str, int, float, bool, type(None))


def _checked_id(user_id: object) -> str:
    if not isinstance(user_id, str) or not is_valid_user_id(user_id):
        raise InvalidUserId("invalid user id: use 1-64 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")
    return user_id


def _fields(body: dict) -> dict:
    """Profile fields from a JSON body: name and email strings (or null), other fields
    flat JSON values."""
    fields = {k: v for k, v in body.items() if k not in ("id", "user_id")}
    if len(fields) > MAX_FIELDS:
        raise BadRequest(f"at most {MAX_FIELDS} profile fields")
    for key, value in fields.items():
        if key in ("face_id", "created_at", "updated_at", "faces", "profile"):
            raise BadRequest(f"`{key}` is read-only", field=key)
        if not 1 <= len(key) <= 64:
            raise BadRequest("field names must be 1-64 characters", field=key[:64])
        if key in store.USER_COLUMNS and not isinstance(value, str | None):
            raise BadRequest(f"`{key}` must be a string or null", field=key)
        if not isinstance(value, SCALARS):
            raise BadRequest(f"`{key}` must be a string, number, boolean or null", field=key)
    return fields


def _user_json(row) -> dict:
    return {"profile": store.user_profile(row), "face_id": row["face_id"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def _existing(user_id: str):
    row = store.get_user(db(), _checked_id(user_id))
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return row


@bp.post("/users")
@require("manage")
def create_or_update_user():
    body = json_body()
    user_id = _checked_id(body.get("id", body.get("user_id")))
    fields = _fields(body)
    with store.transaction(db()):
        created = store.upsert_profile(db(), user_id, fields)
    log.info("user %s %s through the API", user_id, "created" if created else "updated")
    return {"created": created, "user": _user_json(store.get_user(db(), user_id))}, (
        201 if created else 200)


@bp.get("/users")
@require("manage")
def list_users():
    limit = query_int("limit", 50, 1, MAX_PAGE)
    offset = query_int("offset", 0, 0, 2**62)
    name = request.args.get("name") or None
    rows, total = store.list_users(db(), limit=limit, offset=offset, name=name)
    users = [{**_user_json(r), "faces": r["face_count"]} for r in rows]
    following = offset + len(rows)
    return {"users": users, "total": total, "limit": limit, "offset": offset,
            "next_offset": following if following < total else None}


@bp.get("/users/<user_id>")
@require("manage")
def get_user(user_id: str):
    row = _existing(user_id)
    return {**_user_json(row), "faces": store.user_faces(db(), user_id)}


@bp.patch("/users/<user_id>")
@require("manage")
def patch_user(user_id: str):
    _existing(user_id)
    body = json_body()
    if body.get("id", user_id) != user_id or body.get("user_id", user_id) != user_id:
        raise BadRequest("a user id cannot be changed")
    fields = _fields(body)
    with store.transaction(db()):
        store.update_profile(db(), user_id, fields)
    log.info("user %s updated through the API", user_id)
    return {"user": _user_json(store.get_user(db(), user_id))}


@bp.post("/users/<user_id>/photos")
@require("manage")
def add_photo(user_id: str):
    s = services()
    _checked_id(user_id)  # before any path is built from it
    data = read_photo(s.settings.max_upload_bytes)
    upload = enroll_upload(s.settings, db(), s.pipeline(), user_id, data, index=s.index())
    g.faces_found = 1
    s.maybe_rebuild(db())
    return {"user_id": upload.user_id, "face_id": upload.face_id, "photo_path": upload.path,
            "created": upload.created, "face": upload.face.to_json(), "flags": upload.flags,
            "duplicate_of": upload.duplicate_of}, (201 if upload.created else 200)


@bp.delete("/users/<user_id>/faces/<int:face_id>")
@require("manage")
def remove_face(user_id: str, face_id: int):
    s = services()
    deleted = delete_face(s.settings.photos_dir, db(), _checked_id(user_id), face_id)
    s.rebuilder.request(purge=True)
    return {"deleted": deleted}


@bp.delete("/users/<user_id>")
@require("manage")
def erase(user_id: str):
    s = services()
    erased = erase_user(s.settings.photos_dir, db(), _checked_id(user_id))
    log.warning("erasure of user %s requested with key %s [request %s]", user_id,
                g.get("api_key"), g.get("request_id"))
    s.rebuilder.request(purge=True)
    return {"erased": erased.to_json()}


@bp.get("/ingest")
@require("manage")
def ingest():
    """What became of each photo that reached the photos folder (same as convert.py --report)."""
    from facerec.ingest_report import FILTERS, ingest_report

    status = request.args.get("status") or None
    if status not in (None, "all", *FILTERS):
        raise BadRequest(f"`status` must be one of all, {', '.join(FILTERS)}", parameter="status")
    return ingest_report(db(), status, limit=query_int("limit", 100, 1, MAX_PAGE),
                         offset=query_int("offset", 0, 0, 2**62))
