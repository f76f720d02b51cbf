"""Domain errors. Each carries its HTTP status and a stable machine-readable code, so the
API has one error handler and the CLIs print one clear line."""

from __future__ import annotations


class FaceRecError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        body = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadImage(FaceRecError):
    status = 400
    code = "bad_image"


class ImageTooLarge(FaceRecError):
    status = 413
    code = "image_too_large"


class NoFace(FaceRecError):
    status = 422
    code = "no_face"


class MultipleFaces(FaceRecError):
    status = 422
    code = "multiple_faces"


class InvalidUserId(FaceRecError):
    status = 400
    code = "invalid_user_id"


class NotFound(FaceRecError):
    status = 404
    code = "not_found"


class ModelUnavailable(FaceRecError):
    """Weights missing or corrupt: the message names the command that fixes it."""

    status = 503
    code = "model_unavailable"


class IndexMismatch(FaceRecError):
    """The index or database was built with another embedding model."""

    status = 503
    code = "index_mismatch"


class DatabaseBusy(FaceRecError):
    """Another writer held the database for longer than the busy timeout: nothing was
    changed; the client may retry."""

    status = 503
    code = "database_busy"


class BadRequest(FaceRecError):
    """A malformed request: missing field, bad base64, invalid parameter."""

    status = 400
    code = "bad_request"


class Unauthorized(FaceRecError):
    status = 401
    code = "unauthorized"


class Forbidden(FaceRecError):
    status = 403
    code = "forbidden"


class DuplicateIdentity(FaceRecError):
    """The face already belongs to another user (with reject_duplicates set)."""

    status = 409
    code = "duplicate_identity"


class UnsupportedMediaType(FaceRecError):
    status = 415
    code = "unsupported_media_type"
