"""Measure the service's accuracy on your own labelled photos and calibrate its threshold.

    python -m facerec.evaluate PHOTO_DIR [PHOTO_DIR ...] --out eval/
    python -m facerec.evaluate pairs.csv --out eval/
    python -m facerec.evaluate PHOTO_DIR --write-threshold                 # best accuracy
    python -m facerec.evaluate PHOTO_DIR --write-threshold --threshold-at-fmr 0.001
    python -m facerec.evaluate PHOTO_DIR --compare-face-recognition

PHOTO_DIR holds one folder per person (PHOTO_DIR/<person>/<photo>.jpg); several are
merged by person name. A pairs CSV has rows `path_a,path_b,same`. Every photo goes once
through the same pipeline as the service (facerec.pipeline, with the configured model);
the largest face of each photo is used, and photos with no face or several faces are
counted and listed. Writes to --out: report.json, report.md, roc.png, det.png, hist.png.

--write-threshold stores the chosen threshold as `threshold` in the settings file
(--config, default FACEREC_CONFIG or facerec.toml), which the service reads at start:
the best balanced-accuracy threshold by default, or with --threshold-at-fmr X the lowest
threshold whose false match rate on these photos is ≤ X (needs ≥ 1/X impostor pairs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facerec import metrics  # noqa: E402
from facerec.config import config_file, settings_from_env, write_setting  # noqa: E402
from facerec.evaluation.data import Dataset, load_dataset  # noqa: E402
from facerec.evaluation.engines import (  # noqa: E402
    EngineUnavailable,
    FaceRecognition,
    ServicePipeline,
    embed_photos,
)
from facerec.evaluation.protocol import identify, make_pairs, verify  # noqa: E402
from facerec.evaluation.report import EngineResult, engine_json, markdown, write_json  # noqa: E402
from facerec.pipeline import Pipeline  # noqa: E402


@dataclass
class Options:
    enroll: int | None = None            # photos enrolled per person (None: half)
    unenrolled_fraction: float = 0.2     # share of people never enrolled, per fold
    max_impostor_pairs: int = 1_000_000  # more are sampled (seeded)
    seed: int = 0
    threshold_at_fmr: float | None = None  # None: best balanced accuracy
    compare_face_recognition: bool = False
    plots: bool = True
    progress: bool = True


def choose_threshold(result_engine, verification, at_fmr: float | None) -> tuple[float | None, str]:
    if at_fmr is None:
        return (result_engine.to_threshold(verification.best_accuracy.threshold),
                "best balanced accuracy")
    point = metrics.fnmr_at_fmr(verification.genuine_scores, verification.impostor_scores, at_fmr)
    rule = f"lowest with FMR ≤ {at_fmr:g}"
    return (None if point is None else result_engine.to_threshold(point.threshold)), rule


def evaluate(dataset: Dataset, pipeline: Pipeline, out_dir: Path, options: Options) -> dict:
    """Run every engine over the photos, score both protocols, write the report files,
    and return the report (report.json's content)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if options.plots:
        from facerec.evaluation.plots import require_matplotlib

        require_matplotlib()  # fail now, not after the long part
    engines = [ServicePipeline(pipeline)]
    if options.compare_face_recognition:
        engines.append(FaceRecognition())
    pairs = make_pairs(dataset, options.max_impostor_pairs, options.seed)
    results = []
    for engine in engines:
        emb = embed_photos(dataset, engine, progress=options.progress)
        verification = verify(pairs, emb, engine)
        identification = identify(dataset, emb, engine, enroll=options.enroll,
                                  unenrolled_fraction=options.unenrolled_fraction, seed=options.seed)
        threshold, rule = choose_threshold(engine, verification, options.threshold_at_fmr)
        results.append(EngineResult(engine, emb, verification, identification, threshold, rule))
    report = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": pipeline.model.name,
        "dataset": {"sources": dataset.sources, "mode": "pairs CSV" if dataset.pairs else "folder per person",
                    "photos": len(dataset.photos), "people": len(dataset.people)},
        "options": {k: v for k, v in options.__dict__.items() if k not in {"progress"}},
        "engines": [engine_json(r, dataset) for r in results],
        "threshold_written": None,
    }
    if options.plots:
        from facerec.evaluation.plots import write_plots

        report["plots"] = [p.name for p in write_plots(results, out_dir)]
    write_json(out_dir / "report.json", report)
    (out_dir / "report.md").write_text(markdown(report))
    return report


def write_threshold(report: dict, out_dir: Path, config_path: Path) -> dict:
    """Store the service engine's chosen threshold in the settings file; the report files
    are rewritten to say so."""
    ours = report["engines"][0]["chosen_threshold"]
    if ours["threshold"] is None:
        raise ValueError(f"no threshold for '{ours['rule']}': {ours.get('note')}; use more photos "
                         "or a larger FMR")
    value = round(float(ours["threshold"]), 4)
    path = write_setting("threshold", value, config_path)
    report["threshold_written"] = {"threshold": value, "path": str(path), "rule": ours["rule"],
                                   "model": report["model"]}
    write_json(Path(out_dir) / "report.json", report)
    (Path(out_dir) / "report.md").write_text(markdown(report))
    return report["threshold_written"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m facerec.evaluate",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("sources", nargs="+", type=Path, metavar="PHOTO_DIR|PAIRS.csv")
    parser.add_argument("--out", type=Path, default=Path("evaluation"),
                        help="report folder (default ./evaluation)")
    parser.add_argument("--enroll", type=int, help="photos enrolled per person (default: half of them)")
    parser.add_argument("--unenrolled-fraction", type=float, default=0.2,
                        help="share of people left out of enrollment in each fold (default 0.2)")
    parser.add_argument("--max-impostor-pairs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-threshold", action="store_true",
                        help="store the chosen threshold in the settings file")
    parser.add_argument("--threshold-at-fmr", type=float, metavar="FMR",
                        help="choose the lowest threshold with FMR ≤ this (e.g. 0.001) instead of "
                             "the best-accuracy one")
    parser.add_argument("--config", type=Path, help="settings file to read and write (default: "
                        "FACEREC_CONFIG or facerec.toml at the project root)")
    parser.add_argument("--compare-face-recognition", action="store_true",
                        help="also run dlib's face_recognition on the same photos (optional extra)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.threshold_at_fmr is not None and not 0 < args.threshold_at_fmr < 1:
        parser.error("--threshold-at-fmr must be between 0 and 1")
    if not 0 < args.unenrolled_fraction <= 0.5:
        parser.error("--unenrolled-fraction must be in (0, 0.5]")
    return args


def main(argv: list[str] | None = None, pipeline: Pipeline | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    environ = dict(os.environ)
    if args.config:
        environ["FACEREC_CONFIG"] = str(args.config)
    settings = settings_from_env(environ)
    try:
        dataset = load_dataset(args.sources)
        if pipeline is None:
            from facerec.pipeline import load_pipeline

            pipeline = load_pipeline(settings)
        if pipeline.model.name != settings.model:
            raise ValueError(f"the pipeline runs {pipeline.model.name} but the settings say {settings.model}")
        options = Options(enroll=args.enroll, unenrolled_fraction=args.unenrolled_fraction,
                          max_impostor_pairs=args.max_impostor_pairs, seed=args.seed,
                          threshold_at_fmr=args.threshold_at_fmr,
                          compare_face_recognition=args.compare_face_recognition,
                          plots=not args.no_plots, progress=not args.no_progress)
        report = evaluate(dataset, pipeline, args.out, options)
        written = (write_threshold(report, args.out, config_file(environ))
                   if args.write_threshold else None)
    except (ValueError, RuntimeError, EngineUnavailable) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    print(markdown(report))
    ours = report["engines"][0]
    photos = ours["photos"]
    print(f"evaluate: {report['dataset']['photos']} photos of {report['dataset']['people']} people "
          f"({len(photos['no_face'])} without a face, {len(photos['several_faces_largest_used'])} with "
          f"several, {len(photos['unreadable'])} unreadable); "
          f"{ours['verification']['genuine_pairs']:,} genuine + {ours['verification']['impostor_pairs']:,} "
          f"impostor pairs; {len(report['engines'])} engine(s) in {time.perf_counter() - started:.0f} s; "
          f"report in {args.out}"
          + (f"; threshold {written['threshold']} written to {written['path']}" if written else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
