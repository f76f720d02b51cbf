"""Fuzzing for a bounded number of examples: hypothesis against the image decoder and
the file-name parser, schemathesis against the OpenAPI document of the running app (in
process, over WSGI, with both keys). The `heavy` variants run many more examples
(RELIABILITY.md). What they found is listed in RELIABILITY.md."""

from __future__ import annotations

import io

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from facerec.enroll import path_key
from facerec.errors import BadImage, ImageTooLarge
from facerec.imaging import MIN_SIDE, decode_image
from facerec.naming import USER_ID_PATTERN, classify

pytestmark = pytest.mark.reliability

FAST, HEAVY = 300, 20_000  # hypothesis examples per property


def seeds() -> list[bytes]:
    """Small real images in every format the decoder accepts, some with EXIF."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (40, 48, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = []
    for fmt, kw in [("JPEG", {"exif": exif}), ("JPEG", {"progressive": True}), ("PNG", {}),
                    ("WEBP", {}), ("BMP", {}), ("TIFF", {}), ("GIF", {}), ("PNG", {"exif": exif})]:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **kw)
        out.append(buffer.getvalue())
    return out


SEEDS = seeds()


@st.composite
def mutated(draw) -> bytes:
    """A real image with bytes flipped, cut, inserted or a header field overwritten."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "word"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:  # a 16-bit field (sizes live in these) set to an extreme
            data[at:at + 2] = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x7f\xff"]))
    return bytes(data)


def check_decode(data: bytes) -> None:
    try:
        image = decode_image(data, max_pixels=4_000_000)
    except (BadImage, ImageTooLarge):
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= MIN_SIDE and image.shape[0] * image.shape[1] <= 4_000_000


@settings(max_examples=FAST, deadline=None)
@given(st.binary(max_size=4096) | mutated())
def test_decoder_only_raises_its_own_errors(data):
    check_decode(data)


@pytest.mark.heavy
@settings(max_examples=HEAVY, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=65536) | mutated())
def test_decoder_only_raises_its_own_errors_long(data):
    check_decode(data)


def check_name(path: str) -> None:
    result = classify(path)
    assert result.kind in ("photo", "ignored", "rejected")
    if result.kind == "photo":
        uid = result.user_id
        assert USER_ID_PATTERN.fullmatch(uid) and ".." not in uid, uid
        assert "/" not in uid and "\\" not in uid and "\0" not in uid
    else:
        assert result.user_id is None and result.reason
    path_key(path)  # the ledger key: never raises, whatever the bytes


names = st.text(max_size=120) | st.builds(
    lambda parts, ext: "/".join(parts) + ext,
    st.lists(st.text(alphabet=st.sampled_from("ab._-/\\ü\0~ 12"), max_size=12), min_size=1, max_size=4),
    st.sampled_from([".jpg", ".JPEG", ".png", ".part", "", ".txt", ".jpg.tmp"]))
surrogates = st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape") + ".jpg")


@settings(max_examples=FAST * 3, deadline=None)
@given(names | surrogates)
def test_file_names_classify_without_error_and_ids_pass_the_allowlist(path):
    check_name(path)


@pytest.mark.heavy
@settings(max_examples=HEAVY * 5, deadline=None)
@given(names | surrogates)
def test_file_names_long(path):
    check_name(path)


# --- schemathesis against /openapi.json ---------------------------------------------

@pytest.fixture
def fuzzed_app(api_settings):
    from facerec.api import create_app
    from tests.api_helpers import read_keys
    from tests.fakes import fake_pipeline

    app = create_app(api_settings, pipeline=fake_pipeline())
    app.config["FUZZ_KEY"] = read_keys(api_settings.api_keys_path)["manage"]
    return app


def fuzz_case(case, app) -> None:
    response = case.call(headers={"X-API-Key": app.config["FUZZ_KEY"]})
    # Never a 5xx (a model failure is a documented 503, but the fake models do not fail).
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                        response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert body["error"] and body["message"] and body["request_id"], body
    case.validate_response(response, checks=[schemathesis.checks.not_a_server_error,
                                             schemathesis.checks.status_code_conformance,
                                             schemathesis.checks.content_type_conformance])


def fuzz_every_operation(app, examples: int) -> list[str]:
    """Every operation of /openapi.json, `examples` generated requests each (schemathesis's
    pytest fixture loader does not run under pytest 9, so its strategies are driven here)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    done = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            fuzz_case(case, app)

        run()
        done.append(f"{operation.method.upper()} {operation.path}")
    return done


def test_openapi_fuzz(fuzzed_app):
    done = fuzz_every_operation(fuzzed_app, 15)
    assert len(done) >= 12, done


@pytest.mark.heavy
def test_openapi_fuzz_long(fuzzed_app):
    fuzz_every_operation(fuzzed_app, 400)
