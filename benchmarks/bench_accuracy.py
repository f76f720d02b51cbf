"""Accuracy and speed of the service's pipeline side by side with dlib's face_recognition,
on the same real photos in the same run: `python -m facerec.evaluate` on the 5-celebrity
sample set (train + val, 118 photos of 5 people) with --compare-face-recognition.

    .venv/bin/python -m benchmarks.bench_accuracy

Writes benchmarks/results/accuracy.md (plots and report.json in benchmarks/results/accuracy/).
Needs requirements-eval.txt plus face-recognition installed --no-deps (scripts/setup.sh --dev).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facerec.config import PROJECT_ROOT, Settings  # noqa: E402
from facerec.evaluate import Options, evaluate  # noqa: E402
from facerec.evaluation.data import load_dataset  # noqa: E402
from facerec.evaluation.report import markdown  # noqa: E402
from facerec.pipeline import load_pipeline  # noqa: E402

SAMPLES = Path("samples") / "5-celebrity-faces-dataset"  # relative: the report lists photo paths
RESULTS = PROJECT_ROOT / "benchmarks" / "results"
COMMAND = ".venv/bin/python -m benchmarks.bench_accuracy"


def main() -> None:
    os.chdir(PROJECT_ROOT)
    dataset = load_dataset([SAMPLES / "train", SAMPLES / "val"])
    out = RESULTS / "accuracy"
    report = evaluate(dataset, load_pipeline(Settings()), out,
                      Options(compare_face_recognition=True, progress=True))
    ours = report["engines"][0]
    text = "\n".join([
        "# Accuracy: facerec vs face_recognition on the same photos",
        "",
        f"Command: `{COMMAND}` (= `python -m facerec.evaluate samples/5-celebrity-faces-dataset/train "
        f"samples/5-celebrity-faces-dataset/val --compare-face-recognition`) · "
        f"{platform.machine()}, {os.cpu_count()} cores, one photo at a time.",
        "",
        "A small set: 118 photos of 5 people, so about 1,300 genuine and 5,500 impostor pairs "
        "(photo against photo) — FMR 0.01% cannot be resolved and every figure moves by a "
        "pair or two. Open set: 5 folds, each leaving one person out of enrollment; the "
        "others enrol the first half of their photos. Each engine is scored on the pairs "
        "where it found both faces (unscored pairs are counted in the table), so an engine "
        "that misses hard photos also skips their pairs. Calibrate on your own photos "
        "(`python -m facerec.evaluate`) before trusting a threshold.",
        "",
        markdown(report).rstrip(),
        "",
        f"Best-accuracy cosine threshold here {ours['verification']['best_accuracy']['threshold']:.3f} vs "
        f"the model's default {ours['default_threshold']['threshold']:.2f} (chosen on other "
        "held-out photos, DESIGN.md §6): thresholds depend on the photos; the service matches "
        "against all of a user's enrolled faces, which scores genuine probes higher than "
        "single pairs do.",
        "",
        "Plots: [ROC](benchmarks/results/accuracy/roc.png), [DET](benchmarks/results/accuracy/det.png), "
        "[score histograms](benchmarks/results/accuracy/hist.png); raw figures in "
        "benchmarks/results/accuracy/report.json.",
        "",
    ])
    (RESULTS / "accuracy.md").write_text(text)
    print(text)
    print(f"accuracy: {report['dataset']['photos']} photos, {len(report['engines'])} engines; "
          f"wrote {(RESULTS / 'accuracy.md').relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
