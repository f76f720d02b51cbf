"""An evaluation's results per engine, as JSON and as a readable markdown table.

Thresholds are always given in the unit a user configures: cosine similarity for the
service (accept if ≥), euclidean distance for face_recognition (accept if ≤)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerec import metrics
from facerec.evaluation.data import Dataset
from facerec.evaluation.engines import Embeddings, Engine
from facerec.evaluation.protocol import Identification, Verification

NOT_ENOUGH_IMPOSTORS = "not enough impostor pairs"
NOT_ENOUGH_NONMATED = "not enough probes of people not enrolled"


@dataclass
class EngineResult:
    engine: Engine
    embeddings: Embeddings
    verification: Verification
    identification: Identification | None
    chosen_threshold: float | None  # in threshold units; None: the rule has no answer here
    chosen_rule: str


def _point(engine: Engine, point: metrics.OperatingPoint | None, rate: str, miss: str,
           count: int, note: str) -> dict:
    if point is None:
        return {"threshold": None, rate: None, miss: None, "note": f"{note} ({count})"}
    return {"threshold": round(engine.to_threshold(point.threshold), 4),
            rate: round(point.fmr, 6), miss: round(point.fnmr, 6)}


def _at_threshold(r: EngineResult, threshold: float) -> dict:
    """Error rates if the service (or face_recognition) ran at this threshold."""
    score = r.engine.to_threshold(threshold)  # the mapping is its own inverse (x or −x)
    v = r.verification
    out = {"threshold": round(threshold, 4),
           "fmr": round(float(np.mean(v.impostor_scores >= score)), 6),
           "fnmr": round(float(np.mean(v.genuine_scores < score)), 6)}
    if r.identification is not None:
        out["fpir"] = round(metrics.fpir(r.identification.result, score), 6) \
            if r.identification.nonmated_probes else None
        out["fnir"] = round(metrics.fnir(r.identification.result, score), 6) \
            if r.identification.mated_probes else None
    return out


def engine_json(r: EngineResult, dataset: Dataset) -> dict:
    e, emb, v, i = r.engine, r.embeddings, r.verification, r.identification
    names = [str(p.path) for p in dataset.photos]
    seconds = emb.seconds[~np.isnan(emb.seconds)]
    out = {
        "engine": e.name,
        "score": e.score_name,
        "photos": {
            "total": len(names),
            "unreadable": {names[n]: msg for n, msg in emb.errors.items()},
            "no_face": [names[n] for n in np.flatnonzero(emb.face_counts == 0)],
            "several_faces_largest_used": [names[n] for n in np.flatnonzero(emb.face_counts > 1)],
        },
        "seconds_per_photo": {"mean": round(float(seconds.mean()), 4) if len(seconds) else None,
                              "p50": round(float(np.median(seconds)), 4) if len(seconds) else None,
                              "what": "detection + embedding of the largest face, one photo at a time"},
        "verification": {
            "genuine_pairs": v.genuine_pairs, "impostor_pairs": v.impostor_pairs,
            "impostor_pairs_available": v.impostor_pairs_available,
            "impostor_pairs_sampled": v.impostor_sampled,
            "genuine_pairs_not_scored_no_face": v.genuine_pairs_without_face,
            "impostor_pairs_not_scored_no_face": v.impostor_pairs_without_face,
            "eer": round(v.eer.eer, 6), "eer_threshold": round(e.to_threshold(v.eer.threshold), 4),
            "best_accuracy": {
                "threshold": round(e.to_threshold(v.best_accuracy.threshold), 4),
                "balanced_accuracy": round(v.best_accuracy.balanced_accuracy, 6),
                "accuracy": round(v.best_accuracy.accuracy, 6),
                "fmr": round(v.best_accuracy.fmr, 6), "fnmr": round(v.best_accuracy.fnmr, 6)},
            "fnmr_at_fmr": {target: _point(e, p, "fmr", "fnmr", v.impostor_pairs, NOT_ENOUGH_IMPOSTORS)
                            for target, p in v.at_fmr.items()},
        },
        "identification": None,
        "default_threshold": _at_threshold(r, e.default_threshold),
        "chosen_threshold": ({"rule": r.chosen_rule, **_at_threshold(r, r.chosen_threshold)}
                             if r.chosen_threshold is not None else
                             {"rule": r.chosen_rule, "threshold": None, "note": NOT_ENOUGH_IMPOSTORS}),
    }
    if i is not None:
        out["identification"] = {
            "folds": i.folds, "enroll_per_person": i.enroll_per_person,
            "enrolled_faces": i.enrolled_faces, "mated_probes": i.mated_probes,
            "nonmated_probes": i.nonmated_probes, "probes_not_scored_no_face": i.probes_without_face,
            "enrollment_photos_no_face": i.enrollment_photos_without_face,
            "top1_accuracy": None if i.top1_accuracy is None else round(i.top1_accuracy, 6),
            "fnir_at_fpir": {target: _point(e, p, "fpir", "fnir", i.nonmated_probes, NOT_ENOUGH_NONMATED)
                             for target, p in i.at_fpir.items()},
        }
    return out


def write_json(path: Path, report: dict) -> None:
    Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def _fmt(value, pattern="{:.4f}") -> str:
    return "–" if value is None else pattern.format(value)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _op(point: dict, rate: str, miss: str) -> str:
    if point["threshold"] is None:
        return point["note"].split(" (")[0]
    return f"{_pct(point[miss])} (t {point['threshold']:.3f})"


def markdown(report: dict) -> str:
    """The headline figures, one column per engine."""
    engines = report["engines"]
    d = report["dataset"]
    rows: list[tuple[str, list[str]]] = []

    def add(label, fn):
        rows.append((label, [fn(e) for e in engines]))

    add("photos: unreadable / no face / several faces (largest used)",
        lambda e: f"{len(e['photos']['unreadable'])} / {len(e['photos']['no_face'])} / "
                  f"{len(e['photos']['several_faces_largest_used'])}")
    add("seconds per photo, detection + embedding (mean / p50)",
        lambda e: f"{_fmt(e['seconds_per_photo']['mean'], '{:.3f}')} / "
                  f"{_fmt(e['seconds_per_photo']['p50'], '{:.3f}')}")
    add("verification pairs scored: genuine / impostor",
        lambda e: f"{e['verification']['genuine_pairs']:,} / {e['verification']['impostor_pairs']:,}")
    add("pairs not scored (a photo without a face): genuine / impostor",
        lambda e: f"{e['verification']['genuine_pairs_not_scored_no_face']:,} / "
                  f"{e['verification']['impostor_pairs_not_scored_no_face']:,}")
    add("equal error rate (threshold)",
        lambda e: f"{_pct(e['verification']['eer'])} (t {e['verification']['eer_threshold']:.3f})")
    add("best balanced accuracy (threshold)",
        lambda e: f"{_pct(e['verification']['best_accuracy']['balanced_accuracy'])} "
                  f"(t {e['verification']['best_accuracy']['threshold']:.3f})")
    for target in engines[0]["verification"]["fnmr_at_fmr"]:
        add(f"FNMR at FMR {float(target):.2%}",
            lambda e, t=target: _op(e["verification"]["fnmr_at_fmr"][t], "fmr", "fnmr"))
    add("at the default threshold: FMR / FNMR",
        lambda e: f"{_pct(e['default_threshold']['fmr'])} / {_pct(e['default_threshold']['fnmr'])} "
                  f"(t {e['default_threshold']['threshold']:.3f})")
    if engines[0]["identification"]:
        add("open set: probes of enrolled / not enrolled people (over folds)",
            lambda e: f"{e['identification']['mated_probes']:,} / {e['identification']['nonmated_probes']:,}")
        add("open set: top-1 accuracy (enrolled people, no threshold)",
            lambda e: _pct(e["identification"]["top1_accuracy"]))
        for target in engines[0]["identification"]["fnir_at_fpir"]:
            add(f"open set: FNIR at FPIR {float(target):.0%}",
                lambda e, t=target: _op(e["identification"]["fnir_at_fpir"][t], "fpir", "fnir"))
    add("chosen threshold (rule): FMR / FNMR",
        lambda e: "–" if e["chosen_threshold"]["threshold"] is None else
        f"{e['chosen_threshold']['threshold']:.3f} ({e['chosen_threshold']['rule']}): "
        f"{_pct(e['chosen_threshold']['fmr'])} / {_pct(e['chosen_threshold']['fnmr'])}")
    lines = [
        f"Photos: {d['photos']} of {d['people']} people from {', '.join(d['sources'])} "
        f"({d['mode']}). Thresholds: " + "; ".join(f"{e['engine']}: {e['score']}" for e in engines) + ".",
        "",
        "| | " + " | ".join(e["engine"] for e in engines) + " |",
        "|---|" + "---|" * len(engines),
    ]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    if report.get("threshold_written"):
        w = report["threshold_written"]
        lines += ["", f"Wrote `threshold = {w['threshold']}` to {w['path']} ({w['rule']})."]
    return "\n".join(lines) + "\n"
