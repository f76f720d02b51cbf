"""Time stock mtcnn 1.0 `detect_faces` against `facerec.detector.MTCNNDetector.detect`.

The sample photos (FACEREC_SAMPLES_DIR, else samples/5-celebrity-faces-dataset) are resized
to about 250 px and 640 px wide (aspect kept) and each is detected once by each detector,
after warm-up (the stock detector on a few photos; the compiled one on every photo once, so
that the P-Net graph of every pyramid depth in the set is traced, as in a running service).
TensorFlow's thread pools are fixed when it starts, so each thread setting runs in its own
subprocess, with intra-op and inter-op threads both set to that number.

Prints a markdown table and writes it to benchmarks/results/detector.md.

    .venv/bin/python benchmarks/bench_detector.py [--limit N] [--threads 1 2] [--widths 250 640]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "detector.md"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
STOCK_WARMUP_PHOTOS = 5


def samples_dir() -> Path:
    configured = os.environ.get("FACEREC_SAMPLES_DIR")
    path = Path(configured) if configured else REPO_ROOT / "samples" / "5-celebrity-faces-dataset"
    if not path.is_dir():
        sys.exit(f"sample photos not found at {path}: set FACEREC_SAMPLES_DIR")
    return path


def load_photos(limit: int | None) -> list[np.ndarray]:
    import cv2

    paths = sorted(p for p in samples_dir().rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    photos = []
    for path in paths[:limit]:
        bgr = cv2.imread(str(path))
        if bgr is not None:
            photos.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return photos


def resize_to_width(image: np.ndarray, width: int) -> np.ndarray:
    import cv2

    height = max(1, round(image.shape[0] * width / image.shape[1]))
    interpolation = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def stock_boxes(result: list[dict]) -> list[tuple[int, ...]]:
    return sorted(tuple(int(v) for v in face["box"]) for face in result)


def compiled_boxes(faces) -> list[tuple[int, ...]]:
    return sorted((f.box[0], f.box[1], f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces)


def worker(threads: int, widths: list[int], limit: int | None) -> dict:
    """Runs in a fresh process: TensorFlow's thread pools are set before first use."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from mtcnn import MTCNN

    sys.path.insert(0, str(REPO_ROOT))
    from facerec.detector import MTCNNDetector

    stock = MTCNN()
    compiled = MTCNNDetector()
    photos = load_photos(limit)
    rows = []
    for width in widths:
        images = [resize_to_width(photo, width) for photo in photos]
        for image in images[:STOCK_WARMUP_PHOTOS]:
            stock.detect_faces(image)
        for image in images:
            compiled.detect(image)
        times: dict[str, list[float]] = {"stock": [], "compiled": []}
        same = 0
        for image in images:
            start = time.perf_counter()
            expected = stock.detect_faces(image)
            times["stock"].append(time.perf_counter() - start)
            start = time.perf_counter()
            got = compiled.detect(image)
            times["compiled"].append(time.perf_counter() - start)
            same += stock_boxes(expected) == compiled_boxes(got)
        rows.append(
            {
                "width": width,
                "threads": threads,
                "photos": len(images),
                "mean_height": float(np.mean([image.shape[0] for image in images])),
                "over_max_side": sum(max(image.shape[:2]) > compiled.max_side for image in images),
                "same_boxes": same,
                **{
                    f"{name}_{stat}": float(fn(values) * 1000)
                    for name, values in times.items()
                    for stat, fn in (("mean", np.mean), ("p50", np.median))
                },
            }
        )
    return {"rows": rows}


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        "# MTCNN detector: stock mtcnn 1.0 vs compiled (facerec.detector)",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}. Command: `{command}`",
        "",
        "| width px (mean height) | TF threads | photos | stock mean ms | stock p50 ms "
        "| compiled mean ms | compiled p50 ms | speed-up (mean) | same boxes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['width']} ({r['mean_height']:.0f}) | {r['threads']} | {r['photos']} "
            f"| {r['stock_mean']:.1f} | {r['stock_p50']:.1f} "
            f"| {r['compiled_mean']:.1f} | {r['compiled_p50']:.1f} "
            f"| {r['stock_mean'] / r['compiled_mean']:.1f}x | {r['same_boxes']}/{r['photos']} |"
        )
    over = sum(r["over_max_side"] for r in rows)
    lines += [
        "",
        "Times are per photo, one photo at a time, after warm-up. TF threads = intra-op and "
        "inter-op threads. 'same boxes' counts photos where both return identical integer boxes"
        + (
            f"; {over} photo-runs had a side over max_side=1024, which the compiled detector "
            "shrinks first, so their boxes may differ by design."
            if over
            else "."
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--widths", type=int, nargs="+", default=[250, 640])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.threads[0], args.widths, args.limit)))
        return

    rows = []
    for threads in args.threads:
        cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--widths"]
        cmd += [str(w) for w in args.widths]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
        if done.returncode != 0:
            sys.exit(f"worker with {threads} threads failed:\n{done.stderr[-4000:]}")
        rows += json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    rows.sort(key=lambda r: (r["width"], r["threads"]))

    command = " ".join(["python", os.path.relpath(__file__, REPO_ROOT), *sys.argv[1:]])
    table = markdown(rows, command)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)


if __name__ == "__main__":
    main()
