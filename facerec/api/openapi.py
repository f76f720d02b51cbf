"""The OpenAPI 3.0 document (hand-written: it is the contract) and a docs page that
renders it with a few lines of plain JavaScript, so it works offline (no CDN)."""

from __future__ import annotations

from facerec.api.auth import HEADER

ERROR_CODES = {
    "bad_request": (400, "Malformed request: missing field, invalid base64, invalid parameter "
                         "(threshold, top_k, limit, offset), read-only or non-scalar profile field"),
    "bad_image": (400, "The photo is empty, truncated, not an image, or smaller than 16×16"),
    "invalid_user_id": (400, "User id missing or not 1-64 of [A-Za-z0-9_.-] starting with a "
                             "letter or digit"),
    "unauthorized": (401, f"Missing or invalid API key ({HEADER} header)"),
    "forbidden": (403, "The key's scope does not allow this endpoint (a recognize key on "
                       "/users)"),
    "not_found": (404, "Unknown user or face, a user with no enrolled face (/verify), or no "
                       "such path"),
    "method_not_allowed": (405, "The path exists but not with this method"),
    "duplicate_identity": (409, "Enrollment refused: the face matches another user "
                                "(only with reject_duplicates)"),
    "request_too_large": (413, "The request body exceeds the configured size limit"),
    "image_too_large": (413, "The photo exceeds max_upload_bytes or max_pixels (decompression "
                             "bomb guard)"),
    "unsupported_media_type": (415, "Body is neither multipart/form-data nor JSON, or an "
                                    "enrollment photo in a format other than JPEG/PNG/WebP/BMP/TIFF"),
    "no_face": (422, "No face found in the photo"),
    "multiple_faces": (422, "Enrollment needs exactly one face; this photo has several"),
    "rate_limited": (429, "Too many requests from this address; see Retry-After"),
    "internal_error": (500, "Unexpected failure; details only in the server log"),
    "model_unavailable": (503, "Model weights missing or corrupt; the message names the fix"),
    "index_mismatch": (503, "Index or database built with another embedding model"),
    "database_busy": (503, "Another writer held the database longer than the busy timeout; "
                           "nothing was changed, retry (see Retry-After)"),
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: int) -> dict:
    out = {}
    for status in statuses:
        codes = [c for c, (s, _) in ERROR_CODES.items() if s == status]
        out[str(status)] = {"description": "Error: " + ", ".join(codes),
                            "content": {"application/json": {"schema": _ref("Error")}}}
    return out


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _photo_body(fields=("photo", "file", "image"), extra: dict | None = None) -> dict:
    props = {fields[0]: {"type": "string", "format": "binary",
                         "description": f"The photo (also accepted as `{fields[1]}` or "
                                        f"`{fields[2]}`)"}}
    json_props = {fields[-1]: {"type": "string", "format": "byte",
                               "description": "The photo, base64 (a data: URL prefix is allowed)"}}
    if extra:
        props.update(extra)
        json_props.update(extra)
    return {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": props}},
        "application/json": {"schema": {"type": "object", "properties": json_props,
                                        "required": [fields[-1]]}}}}


def _compare_body() -> dict:
    props = {f"photo{i}": {"type": "string", "format": "binary"} for i in (1, 2)}
    json_props = {f"image{i}": {"type": "string", "format": "byte"} for i in (1, 2)}
    return {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": props}},
        "application/json": {"schema": {"type": "object", "properties": json_props,
                                        "required": ["image1", "image2"]}}}}


THRESHOLD = {"name": "threshold", "in": "query", "schema": {"type": "number", "minimum": -1,
             "maximum": 1}, "description": "Cosine similarity needed for a match (default: "
             "the configured or the model's measured threshold)"}
TOP_K = {"name": "top_k", "in": "query", "schema": {"type": "integer", "minimum": 1},
         "description": "Best users listed per face (default 5, at most max_top_k)"}
USER_ID = {"name": "user_id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}}
RECOGNIZE = [{"ApiKey": []}]
MANAGE = [{"ApiKey": []}]

SCHEMAS = {
    "Error": {"type": "object", "required": ["error", "message"], "properties": {
        "error": {"type": "string", "enum": sorted(ERROR_CODES)},
        "message": {"type": "string"}, "details": {"type": "object"},
        "request_id": {"type": "string"}}},
    "Box": {"type": "object", "properties": {k: {"type": "integer"}
                                             for k in ("x", "y", "width", "height")}},
    "Face": {"type": "object", "properties": {
        "box": _ref("Box"), "detection_score": {"type": "number"},
        "landmarks": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "integer"}}}}},
    "Match": {"type": "object", "properties": {
        "user_id": {"type": "string"}, "face_id": {"type": "integer"},
        "similarity_score": {"type": "number", "description": "cosine"}}},
    "Profile": {"type": "object", "additionalProperties": True, "properties": {
        "id": {"type": "string"}, "name": {"type": "string", "nullable": True},
        "email": {"type": "string", "nullable": True}}},
    "RecognizedFace": {"allOf": [_ref("Face"), {"type": "object", "properties": {
        "recognized": {"type": "boolean"},
        "user_id": {"type": "string", "nullable": True},
        "face_id": {"type": "integer", "nullable": True},
        "similarity_score": {"type": "number", "nullable": True,
                             "description": "best user's cosine (also when not recognized)"},
        "margin": {"type": "number", "nullable": True,
                   "description": "best user's score minus the second-best user's"},
        "ambiguous": {"type": "boolean", "description": "two users above the threshold within "
                      "ambiguity_margin: then not recognized"},
        "matches": {"type": "array", "items": _ref("Match")},
        "profile": {"allOf": [_ref("Profile")], "nullable": True}}}]},
    "Recognition": {"type": "object", "description": "The main (largest) face's fields at the "
                    "top level, every face in `faces`", "properties": {
        "recognized": {"type": "boolean"}, "user_id": {"type": "string", "nullable": True},
        "face_id": {"type": "integer", "nullable": True},
        "similarity_score": {"type": "number", "nullable": True},
        "margin": {"type": "number", "nullable": True}, "ambiguous": {"type": "boolean"},
        "profile": {"allOf": [_ref("Profile")], "nullable": True},
        "threshold": {"type": "number"},
        "faces": {"type": "array", "items": _ref("RecognizedFace")},
        "model": {"type": "string"}, "index_generation": {"type": "integer"}}},
    "Verification": {"type": "object", "properties": {
        "match": {"type": "boolean"}, "user_id": {"type": "string"},
        "similarity_score": {"type": "number", "description": "best cosine over the user's faces"},
        "threshold": {"type": "number"}, "face_id": {"type": "integer"},
        "face": _ref("Face"), "faces_found": {"type": "integer"}}},
    "Comparison": {"type": "object", "properties": {
        "same_person": {"type": "boolean"}, "similarity_score": {"type": "number"},
        "threshold": {"type": "number"}, "faces": {"type": "array", "items": _ref("Face")},
        "faces_found": {"type": "array", "items": {"type": "integer"}}}},
    "User": {"type": "object", "properties": {
        "profile": _ref("Profile"), "face_id": {"type": "integer", "nullable": True},
        "created_at": {"type": "string"}, "updated_at": {"type": "string"}}},
    "ProfileFields": {"type": "object", "additionalProperties": {
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
        "nullable": True}, "properties": {
        "name": {"type": "string", "nullable": True},
        "email": {"type": "string", "nullable": True}},
        "description": "name, email and flat extra fields; in PATCH, null removes an extra "
                       "field (and clears name/email)"},
    "StoredFace": {"type": "object", "properties": {
        "face_id": {"type": "integer"}, "photo_path": {"type": "string", "nullable": True},
        "photo_sha256": {"type": "string"}, "bbox": {"type": "array", "items": {"type": "integer"}},
        "detection_score": {"type": "number"}, "model": {"type": "string"},
        "created_at": {"type": "string"}}},
    "Enrollment": {"type": "object", "properties": {
        "user_id": {"type": "string"}, "face_id": {"type": "integer"},
        "photo_path": {"type": "string", "description": "relative to the photos folder"},
        "created": {"type": "boolean", "description": "false: these bytes were already enrolled"},
        "face": _ref("Face"), "flags": {"type": "array", "items": {"type": "string"}},
        "duplicate_of": {"type": "string", "nullable": True}}},
    "Health": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "models_loaded": {"type": "boolean"}, "model": {"type": "string"},
        "dim": {"type": "integer", "nullable": True}, "threshold": {"type": "number"},
        "index": {"type": "object"}, "users": {"type": "integer"}, "faces": {"type": "integer"},
        "auth_enabled": {"type": "boolean"}}},
}


SCHEMAS.update({
    "TrackedFace": {"allOf": [_ref("Face"), {"type": "object", "properties": {
        "track_id": {"type": "integer", "description": "the same face across frames"},
        "status": {"type": "string", "enum": ["recognized", "unknown", "pending"],
                   "description": "the vote over the track's last identifications: a label "
                   "holding more than half of frames_vote_window votes; pending until then"},
        "recognized": {"type": "boolean"},
        "user_id": {"type": "string", "nullable": True,
                    "description": "the recognized user (while pending: the leading one)"},
        "name": {"type": "string", "nullable": True,
                 "description": "the user's profile name, else the user id"},
        "similarity_score": {"type": "number", "nullable": True,
                             "description": "mean cosine of the votes for user_id"},
        "votes": {"type": "integer"}, "votes_cast": {"type": "integer"},
        "identified": {"type": "boolean", "description": "embedded and searched on this "
                       "frame; false: only tracked (identity stable, box still)"},
        "new_track": {"type": "boolean"},
        "frame_match": {"type": "object", "description": "this frame's own result, when "
                        "identified", "properties": {
                            "user_id": {"type": "string", "nullable": True},
                            "similarity_score": {"type": "number", "nullable": True},
                            "ambiguous": {"type": "boolean"}}}}}]},
    "Frame": {"type": "object", "properties": {
        "stream": {"type": "string"}, "frame": {"type": "integer"},
        "new_stream": {"type": "boolean", "description": "this worker process had no state "
                       "for the stream (first frame, expired, or another worker had it)"},
        "width": {"type": "integer"}, "height": {"type": "integer"},
        "faces": {"type": "array", "items": _ref("TrackedFace")},
        "identified": {"type": "integer"}, "tracked": {"type": "integer"},
        "threshold": {"type": "number"}, "vote_window": {"type": "integer"},
        "timing_ms": {"type": "object", "properties": {
            "detect": {"type": "number"}, "identify": {"type": "number"}}}}},
})


def _frames_paths() -> dict:
    html = {"200": {"description": "HTML", "content": {"text/html": {}}}}
    return {
        "/frames": {"post": {
            "summary": "One frame of a live video: tracked faces with voted identities",
            "tags": ["recognition"],
            "description": "Send the frames of one video one at a time with the same `stream` "
                           "id (chosen by the client). Faces are tracked between frames by box "
                           "overlap; each track's name is a vote over its last identifications, "
                           "so it does not flicker. A face whose identity is settled and whose "
                           "box moved little is only tracked (no embedding), and re-identified "
                           "every frames_reverify_every frames. Streams live in the memory of "
                           "the worker process (bounded, forgotten after frames_idle_seconds); "
                           "a worker that has not seen a stream starts it fresh. Rate limit: "
                           "frames_rate_limit. Needs a recognize or manage key.",
            "security": RECOGNIZE,
            "requestBody": _photo_body(extra={
                "stream": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}),
            "responses": {"200": _json(_ref("Frame")),
                          **_errors(400, 401, 413, 415, 429, 500, 503)}}},
        "/users/{user_id}/faces/{face_id}/image": {"get": {
            "summary": "A small JPEG of one enrolled face", "tags": ["users"],
            "security": MANAGE,
            "description": "Cut from the stored photo (box plus a margin, at most 160 px); "
                           "sent with Cache-Control: no-store.",
            "parameters": [USER_ID, {"name": "face_id", "in": "path", "required": True,
                                     "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {}}},
                          **_errors(400, 401, 403, 404, 429)}}},
        "/": {"get": {"summary": "Camera page: live recognition in the browser",
                      "tags": ["pages"], "responses": html}},
        "/manage": {"get": {"summary": "Manage page: list, search, add and delete users",
                            "tags": ["pages"], "responses": html}},
        "/static/{name}": {"get": {
            "summary": "The pages' scripts and style sheet", "tags": ["pages"],
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file"}, **_errors(404)}}},
    }


def _paths() -> dict:
    return {
        "/upload_photo": {"post": {
            "summary": "Who is in this photo (1:N)", "tags": ["recognition"],
            "description": "Every face (largest first) with its best-matching users. A face "
                           "is recognized when its best user's cosine similarity reaches the "
                           "threshold and no second user is within ambiguity_margin of it. "
                           "Needs a recognize or manage key.",
            "security": RECOGNIZE, "parameters": [THRESHOLD, TOP_K],
            "requestBody": _photo_body(),
            "responses": {"200": _json(_ref("Recognition")),
                          **_errors(400, 401, 413, 415, 422, 429, 500, 503)}}},
        "/verify": {"post": {
            "summary": "Is this the claimed user (1:1)", "tags": ["recognition"],
            "description": "Compares the photo's largest face with the claimed user's "
                           "enrolled faces; match when the best cosine reaches the threshold.",
            "security": RECOGNIZE, "parameters": [THRESHOLD],
            "requestBody": _photo_body(extra={"user_id": {"type": "string"}}),
            "responses": {"200": _json(_ref("Verification")),
                          **_errors(400, 401, 404, 413, 415, 422, 429, 500, 503)}}},
        "/compare": {"post": {
            "summary": "Are these two photos the same person", "tags": ["recognition"],
            "description": "Largest face of each photo; multipart fields photo1/photo2 (or "
                           "file1/file2, image1/image2) or JSON image1/image2 in base64.",
            "security": RECOGNIZE, "parameters": [THRESHOLD], "requestBody": _compare_body(),
            "responses": {"200": _json(_ref("Comparison")),
                          **_errors(400, 401, 413, 415, 422, 429, 500, 503)}}},
        "/users": {
            "post": {"summary": "Create or update a profile", "tags": ["users"],
                     "security": MANAGE, "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"allOf": [_ref("ProfileFields"), {
                             "type": "object", "required": ["id"],
                             "properties": {"id": {"type": "string"}}}]}}}},
                     "responses": {"201": _json({"type": "object", "properties": {
                         "created": {"type": "boolean"}, "user": _ref("User")}}, "Created"),
                         "200": _json({"type": "object"}, "Updated"),
                         **_errors(400, 401, 403, 415, 429, 503)}},
            "get": {"summary": "List users (paginated)", "tags": ["users"], "security": MANAGE,
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer",
                                                                   "minimum": 1, "maximum": 500}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer",
                                                                    "minimum": 0}},
                        {"name": "name", "in": "query", "schema": {"type": "string"},
                         "description": "Only users whose name contains this (any case)"}],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "users": {"type": "array", "items": _ref("User")},
                        "total": {"type": "integer"}, "limit": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "next_offset": {"type": "integer", "nullable": True}}}),
                        **_errors(400, 401, 403, 429)}}},
        "/users/{user_id}": {
            "parameters": [USER_ID],
            "get": {"summary": "A profile and its faces", "tags": ["users"], "security": MANAGE,
                    "responses": {"200": _json({"allOf": [_ref("User"), {
                        "type": "object", "properties": {
                            "faces": {"type": "array", "items": _ref("StoredFace")}}}]}),
                        **_errors(400, 401, 403, 404, 429)}},
            "patch": {"summary": "Change a profile", "tags": ["users"], "security": MANAGE,
                      "requestBody": {"required": True, "content": {"application/json": {
                          "schema": _ref("ProfileFields")}}},
                      "responses": {"200": _json({"type": "object", "properties": {
                          "user": _ref("User")}}), **_errors(400, 401, 403, 404, 415, 429, 503)}},
            "delete": {"summary": "Erase a user", "tags": ["users"], "security": MANAGE,
                       "description": "Deletes the profile, every face, the ledger rows and "
                                      "the photo files; the user is unsearchable at once and "
                                      "the index is rebuilt in the background (older index "
                                      "generations are purged). Logged.",
                       "responses": {"200": _json({"type": "object", "properties": {
                           "erased": {"type": "object"}}}),
                           **_errors(400, 401, 403, 404, 429, 500, 503)}}},
        "/users/{user_id}/photos": {"post": {
            "summary": "Enroll a photo", "tags": ["users"], "security": MANAGE,
            "description": "Same detector, crop, embedder and ledger as convert.py. Exactly "
                           "one face required, otherwise nothing is stored. Creates the user "
                           "if missing. The photo is stored as "
                           "<photos_dir>/<user_id>/api-<sha256[:16]>.<ext> and searchable at once.",
            "parameters": [USER_ID], "requestBody": _photo_body(),
            "responses": {"201": _json(_ref("Enrollment"), "Enrolled"),
                          "200": _json(_ref("Enrollment"), "Already enrolled (same bytes)"),
                          **_errors(400, 401, 403, 409, 413, 415, 422, 429, 500, 503)}}},
        "/users/{user_id}/faces/{face_id}": {"delete": {
            "summary": "Delete one face", "tags": ["users"], "security": MANAGE,
            "description": "Deletes the face and, when it is still that file's face, its photo "
                           "file and ledger row.",
            "parameters": [USER_ID, {"name": "face_id", "in": "path", "required": True,
                                     "schema": {"type": "integer"}}],
            "responses": {"200": _json({"type": "object"}),
                          **_errors(400, 401, 403, 404, 429, 503)}}},
        "/ingest": {"get": {
            "summary": "Ingest report: photos by status with reject reasons", "tags": ["users"],
            "security": MANAGE,
            "description": "The photos ledger, as `convert.py --report` prints it: counts by "
                           "status and a page of photos with their status, reason and flags.",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                    "all", "enrolled", "rejected", "removed", "flagged"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                           "maximum": 500}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": _json({"type": "object", "properties": {
                "counts": {"type": "object"}, "total": {"type": "integer"},
                "status": {"type": "string"}, "matching": {"type": "integer"},
                "limit": {"type": "integer"}, "offset": {"type": "integer"},
                "photos": {"type": "array", "items": {"type": "object"}}}}),
                **_errors(400, 401, 403, 429)}}},
        "/health": {"get": {"summary": "Models, index generation, counts", "tags": ["operations"],
                            "responses": {"200": _json(_ref("Health")),
                                          "503": _json(_ref("Health"), "Models not loaded")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics of this worker process",
                             "tags": ["operations"],
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "tags": ["operations"],
                                  "responses": {"200": _json({"type": "object"})}}},
        "/docs": {"get": {"summary": "This document as a web page (works offline)",
                          "tags": ["operations"],
                          "responses": {"200": {"description": "HTML",
                                                "content": {"text/html": {}}}}}},
    }


def openapi_document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "facerec API", "version": "1",
                 "description": "Self-hosted face recognition. Send the key in the "
                                f"`{HEADER}` header: a `recognize` key for /upload_photo, "
                                "/verify and /compare; a `manage` key for those and /users. "
                                "Every error is JSON {error, message, details?, request_id} "
                                "with the status listed under x-error-codes."},
        "servers": [{"url": "/"}],
        "paths": {**_paths(), **_frames_paths()},
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": HEADER}},
            "schemas": SCHEMAS,
        },
        "x-error-codes": {code: {"status": status, "description": text}
                          for code, (status, text) in ERROR_CODES.items()},
    }


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>facerec API</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2rem} .op{margin:1rem 0;padding:.5rem 1rem;
background:#f6f6f6;border-radius:6px} .m{font-weight:bold;text-transform:uppercase;
display:inline-block;width:4.5rem} code{background:#eee;padding:0 .2rem}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
pre{background:#fff;border:1px solid #ddd;padding:.5rem;overflow:auto;max-height:20rem}
</style></head><body>
<h1 id="title">facerec API</h1><p id="intro"></p><div id="ops">Loading /openapi.json…</div>
<h2>Error codes</h2><table id="errors"><tr><th>code</th><th>status</th><th>meaning</th></tr>
</table>
<script>
function el(tag, text, cls) { const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
fetch("/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("intro").textContent = doc.info.description;
  const ops = document.getElementById("ops"); ops.textContent = "";
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === "parameters") continue;
      const box = el("div", undefined, "op");
      const head = el("div"); head.append(el("span", method, "m"), el("code", path),
        el("span", " — " + (op.summary || ""))); box.append(head);
      if (op.description) box.append(el("p", op.description));
      if (op.security) box.append(el("p", "Needs an API key (X-API-Key header)."));
      const params = (item.parameters || []).concat(op.parameters || []);
      if (params.length) box.append(el("p", "Parameters: " + params.map(p =>
        p.name + " (" + p.in + ")" + (p.description ? ": " + p.description : "")).join("; ")));
      if (op.requestBody) box.append(el("p", "Body: " +
        Object.keys(op.requestBody.content).join(" or ")));
      box.append(el("p", "Responses: " + Object.entries(op.responses).map(([s, r]) =>
        s + " " + r.description).join("; ")));
      ops.append(box);
    }
  }
  const table = document.getElementById("errors");
  for (const [code, e] of Object.entries(doc["x-error-codes"])) {
    const row = el("tr"); row.append(el("td", code), el("td", e.status), el("td", e.description));
    table.append(row);
  }
  const raw = el("details"); raw.append(el("summary", "Raw OpenAPI document"),
    el("pre", JSON.stringify(doc, null, 2))); document.body.append(raw);
}).catch(err => { document.getElementById("ops").textContent = "Could not load /openapi.json: " + err; });
</script></body></html>
"""
