"""Reading a request: photos (multipart or base64 JSON) and query options, each with a
clear error for what is wrong."""

from __future__ import annotations

import base64
import binascii
import re

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from facerec.errors import BadImage, BadRequest, ImageTooLarge, UnsupportedMediaType

PHOTO_FIELDS = ("photo", "file", "image")
DATA_URL = re.compile(r"^data:[\w/+.-]+;base64,")
WHITESPACE = re.compile(r"\s+")


def check_streamed_size() -> None:
    """413 for a body sent without Content-Length (chunked) that reaches the size limit.
    Werkzeug stops reading such a body at MAX_CONTENT_LENGTH but hands back the bytes
    read so far without an error (a cut JSON body then read as "not a JSON object"):
    reading at most the limit, and refusing when it was reached, keeps both the memory
    bound and the right answer. Multipart bodies are already refused by the form parser."""
    limit = request.max_content_length
    if request.content_length is None and limit is not None:
        if len(request.get_data(cache=True)) >= limit:
            raise RequestEntityTooLarge()


def json_body() -> dict:
    """The request's JSON object (400 if it is not one)."""
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON object with Content-Type: application/json")
    check_streamed_size()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body is not a JSON object")
    return body


def decode_base64(text: object, field: str) -> bytes:
    if not isinstance(text, str):
        raise BadRequest(f"`{field}` must be a base64 string", field=field)
    text = WHITESPACE.sub("", DATA_URL.sub("", text, count=1))
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"`{field}` is not valid base64", field=field) from None


def read_photo(max_bytes: int, fields: tuple[str, ...] = PHOTO_FIELDS, label: str = "photo"
               ) -> bytes:
    """The photo's bytes from multipart field `fields[0]` (or the other names), or from
    the JSON key `fields[-1]` as base64."""
    if request.mimetype == "multipart/form-data":
        data = None
        for name in fields:
            upload = request.files.get(name)
            if upload is not None:
                data = upload.read(max_bytes + 1)
                break
        if data is None:
            raise BadRequest(f"no {label}: send it as multipart field "
                             + " or ".join(f"`{f}`" for f in fields), fields=list(fields))
    elif request.is_json:
        body = json_body()
        key = fields[-1]
        if key not in body:
            raise BadRequest(f"no {label}: send JSON {{\"{key}\": \"<base64>\"}}", field=key)
        data = decode_base64(body[key], key)
    else:
        raise UnsupportedMediaType(
            f"send the {label} as multipart/form-data (field `{fields[0]}`) or as JSON "
            f"{{\"{fields[-1]}\": \"<base64>\"}}; got Content-Type "
            f"{request.mimetype or '(none)'!r}")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the {label} is larger than {max_bytes} bytes", max_bytes=max_bytes)
    if not data:
        raise BadImage(f"the {label} is empty")
    return data


def read_field(name: str) -> str | None:
    """A text field from the JSON body, the form, or the query string."""
    if request.is_json:
        check_streamed_size()
        body = request.get_json(silent=True)
        if isinstance(body, dict) and body.get(name) is not None:
            value = body[name]
            if not isinstance(value, str):
                raise BadRequest(f"`{name}` must be a string", field=name)
            return value
    if request.mimetype == "multipart/form-data" and request.form.get(name):
        return request.form[name]
    return request.args.get(name)


def query_float(name: str, default: float, low: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also rejects NaN
        raise BadRequest(f"`{name}` must be a number from {low} to {high}", parameter=name)
    return value


def query_int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"`{name}` must be an integer from {low} to {high}",
                         parameter=name) from None
    if not low <= value <= high:
        raise BadRequest(f"`{name}` must be an integer from {low} to {high}", parameter=name)
    return value
