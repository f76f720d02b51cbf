"""Enrollment throughput on this machine: photos per second through the whole convert.py
path (read, decode, detect, embed, store, index), for one-face photos about 250 px and
640 px wide, plus the cost of a second run over the unchanged folder.

    .venv/bin/python -m benchmarks.bench_enroll [--repeat 2]

Photos: the 5-celebrity sample set (python -m facerec.setup_models --samples), resized;
only photos where the detector finds exactly one face, so every photo is a real enrollment.
Writes benchmarks/results/enroll.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facerec import store  # noqa: E402
from facerec.config import PROJECT_ROOT, Settings  # noqa: E402
from facerec.enroll import enroll_folder  # noqa: E402
from facerec.imaging import load_image_file  # noqa: E402
from facerec.pipeline import load_pipeline  # noqa: E402

SAMPLES = PROJECT_ROOT / "samples" / "5-celebrity-faces-dataset"
COMMAND = ".venv/bin/python -m benchmarks.bench_enroll"


def one_face_photos(pipeline) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(SAMPLES.rglob("*.jpg")):
        if len(pipeline.detect(load_image_file(path), second_pass=False)) == 1:
            found.append((path.parent.name, path))
    return found


def make_folder(photos: list[tuple[str, Path]], width: int, target: Path) -> int:
    target.mkdir(parents=True)
    for n, (person, path) in enumerate(photos):
        image = Image.open(path).convert("RGB")
        height = round(image.height * width / image.width)
        image.resize((width, height), Image.LANCZOS).save(target / f"{person}_{n}.jpg", quality=92)
    return len(photos)


def run(width: int, photos, pipeline, repeat: int) -> dict:
    rates, seconds_second = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            count = make_folder(photos, width, tmp / "data_foto")
            settings = Settings(photos_dir=tmp / "data_foto", db_path=tmp / "f.db",
                                index_dir=tmp / "index")
            conn = store.open_db(settings.db_path)
            started = time.perf_counter()
            summary = enroll_folder(settings, conn, lambda: pipeline, progress=False)
            elapsed = time.perf_counter() - started
            again = enroll_folder(settings, conn, lambda: pipeline, progress=False)
            seconds_second.append(again.seconds)
            rates.append(summary.enrolled / elapsed)
            conn.close()
    return {"width": width, "photos": count, "enrolled": summary.enrolled,
            "rate": statistics.median(rates), "first_s": count / statistics.median(rates),
            "second_s": statistics.median(seconds_second)}


def stage_times(photos, pipeline, width: int) -> dict:
    """Median ms per photo for detection alone and per face for batched embedding."""
    images = []
    for _, path in photos[:48]:
        image = Image.open(path).convert("RGB")
        images.append(np.asarray(image.resize((width, round(image.height * width / image.width)))))
    detect_ms = []
    faces = []
    for image in images:
        t = time.perf_counter()
        found = pipeline.detect(image, second_pass=False)
        detect_ms.append((time.perf_counter() - t) * 1000)
        faces.append((image, found[0]))
    t = time.perf_counter()
    for start in range(0, len(faces), 16):
        pipeline.embed(faces[start:start + 16])
    embed_ms = (time.perf_counter() - t) * 1000 / len(faces)
    return {"detect_ms": statistics.median(detect_ms), "embed_ms": embed_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    pipeline = load_pipeline(Settings())
    photos = one_face_photos(pipeline)
    pipeline.warm_up()  # compile every pyramid depth first: steady-state rates, as a service sees
    for width in (250, 640):
        stage_times(photos[:4], pipeline, width)
    rows = []
    for width in (250, 640):
        result = run(width, photos, pipeline, args.repeat)
        result.update(stage_times(photos, pipeline, width))
        rows.append(result)
    lines = [
        "# Enrollment throughput (convert.py)",
        "",
        f"Command: `{COMMAND} --repeat {args.repeat}` · {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores · default model facenet128",
        "",
        "| photo width | photos | enrolled | photos/s (whole convert.py path) | first run s | "
        "second run s (unchanged) | detection ms/photo (p50) | embedding ms/face (batch 16) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['width']} px | {r['photos']} | {r['enrolled']} | {r['rate']:.1f} | "
                     f"{r['first_s']:.2f} | {r['second_s']:.3f} | {r['detect_ms']:.1f} | "
                     f"{r['embed_ms']:.1f} |")
    lines += ["", "Detection + embedding alone bound the rate: " + ", ".join(
        f"{1000 / (r['detect_ms'] + r['embed_ms']):.1f} photos/s at {r['width']} px" for r in rows)
        + " on this CPU, one photo after another with both cores busy inside TensorFlow "
        "(two single-thread processes were measured at the same total). The second run only "
        "stats files: no model is loaded."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = PROJECT_ROOT / "benchmarks" / "results" / "enroll.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
