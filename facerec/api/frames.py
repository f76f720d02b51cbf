"""POST /frames: one frame of a live video stream; faces are tracked between frames and
their identity voted over the last frames (facerec.tracking, facerec.live).

The stream's state lives in this worker process (facerec.streams): a worker that has not
seen the stream starts it fresh (`new_stream` in the answer)."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, g

from facerec import store
from facerec.api.auth import require
from facerec.api.inputs import read_field, read_photo
from facerec.api.services import EXTENSION as SERVICES
from facerec.api.services import db, services
from facerec.errors import BadRequest
from facerec.imaging import decode_image
from facerec.live import process_frame
from facerec.streams import StreamRegistry
from facerec.tracking import TrackerConfig

bp = Blueprint("frames", __name__)

EXTENSION = "facerec.streams"
STREAM_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@bp.record_once
def _create_registry(state) -> None:
    s = state.app.extensions[SERVICES].settings
    config = TrackerConfig(window=s.frames_vote_window, reverify_every=s.frames_reverify_every)
    state.app.extensions[EXTENSION] = StreamRegistry(
        config, max_streams=s.frames_max_streams, idle_seconds=s.frames_idle_seconds)


def registry() -> StreamRegistry:
    return current_app.extensions[EXTENSION]


@bp.post("/frames")
@require("recognize")
def frame():
    s = services()
    data = read_photo(s.settings.max_upload_bytes)
    stream_id = read_field("stream")
    if not stream_id:
        raise BadRequest("missing `stream`: an id the client chooses for its video stream "
                         "(1-64 letters, digits, '_', '.' or '-'), the same for every frame",
                         field="stream")
    if not STREAM_ID.match(stream_id):
        raise BadRequest("`stream` must be 1-64 letters, digits, '_', '.' or '-'", field="stream")
    image = decode_image(data, s.settings.max_pixels)
    pipeline, index, threshold = s.pipeline(), s.index(), s.threshold
    with registry().open(stream_id) as (tracker, created):
        result = process_frame(image, tracker, pipeline, index, threshold=threshold,
                               ambiguity_margin=s.settings.ambiguity_margin,
                               top_k=s.settings.top_k)
    g.faces_found = len(result.faces)
    users = sorted({f.decision.user_id for f in result.faces if f.decision.user_id})
    profiles = store.get_profiles(db(), users) if users else {}
    return {
        "stream": stream_id,
        "frame": result.frame,
        "new_stream": created,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "faces": [f.to_json(profiles) for f in result.faces],
        "identified": result.identified,
        "tracked": result.tracked,
        "threshold": threshold,
        "vote_window": tracker.config.window,
        "timing_ms": {"detect": round(result.detect_ms, 1),
                      "identify": round(result.identify_ms, 1)},
    }
