"""The evaluation command on the real 5-celebrity photos with the real models: report
structure, plausible accuracy, every photo accounted for, plots, and the threshold write."""

from __future__ import annotations

import json
import shutil
from math import comb

import pytest

from facerec.config import settings_from_env
from facerec.evaluate import Options, evaluate, main
from facerec.evaluation.data import load_dataset

pytestmark = pytest.mark.models

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def full_run(real_pipeline, samples_dir, tmp_path_factory):
    """One evaluation of all 118 photos (train + val), writing the threshold to a temp file."""
    out = tmp_path_factory.mktemp("eval")
    config = out / "facerec.toml"
    config.write_text('model = "facenet128"\n')
    rc = main([str(samples_dir / "train"), str(samples_dir / "val"), "--out", str(out / "report"),
               "--write-threshold", "--config", str(config), "--no-progress"], pipeline=real_pipeline)
    return rc, out / "report", config


def test_report_has_the_expected_structure_and_plausible_numbers(full_run, samples_dir):
    rc, out, _ = full_run
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "facenet128"
    assert report["dataset"] == {"sources": [str(samples_dir / "train"), str(samples_dir / "val")],
                                 "mode": "folder per person", "photos": 118, "people": 5}
    [ours] = report["engines"]
    v, i = ours["verification"], ours["identification"]
    assert i["top1_accuracy"] == 1.0
    assert 0 <= v["eer"] < 0.1
    assert v["best_accuracy"]["balanced_accuracy"] > 0.9
    assert 0 < v["best_accuracy"]["threshold"] < 1
    assert set(v["fnmr_at_fmr"]) == {"0.01", "0.001", "0.0001"}
    assert v["fnmr_at_fmr"]["0.01"]["fnmr"] < 0.2
    # ~5,500 impostor pairs cannot resolve an FMR of 1 in 10,000: said, not invented.
    assert v["fnmr_at_fmr"]["0.0001"]["threshold"] is None
    assert "not enough impostor pairs" in v["fnmr_at_fmr"]["0.0001"]["note"]
    assert set(i["fnir_at_fpir"]) == {"0.01", "0.1"}
    assert i["folds"] == 5 and i["nonmated_probes"] > 100 and i["mated_probes"] > 100
    assert 0 < ours["seconds_per_photo"]["p50"] < 5


def test_every_photo_and_pair_is_accounted_for(full_run, samples_dir):
    _, out, _ = full_run
    [ours] = json.loads((out / "report.json").read_text())["engines"]
    photos = ours["photos"]
    assert photos["total"] == 118
    assert photos["unreadable"] == {}
    # Multi-face photos exist in this set (DESIGN.md §6); they are listed, largest face used.
    assert len(photos["several_faces_largest_used"]) >= 1
    per_person = {}
    for split in ("train", "val"):
        for person in (samples_dir / split).iterdir():
            per_person[person.name] = per_person.get(person.name, 0) + len(list(person.glob("*.jpg")))
    genuine = sum(comb(n, 2) for n in per_person.values())
    impostor = comb(118, 2) - genuine
    v = ours["verification"]
    assert v["genuine_pairs"] + v["genuine_pairs_not_scored_no_face"] == genuine
    assert v["impostor_pairs"] + v["impostor_pairs_not_scored_no_face"] == impostor
    # A photo without a face makes exactly its pairs unscorable.
    no_face = len(photos["no_face"])
    unscored = v["genuine_pairs_not_scored_no_face"] + v["impostor_pairs_not_scored_no_face"]
    assert (unscored > 0) == (no_face > 0)


def test_plots_and_table_are_written(full_run):
    _, out, _ = full_run
    for name in ("roc.png", "det.png", "hist.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    table = (out / "report.md").read_text()
    assert "FNMR at FMR 0.10%" in table and "top-1 accuracy" in table and "Wrote `threshold" in table


def test_write_threshold_stores_the_best_accuracy_threshold(full_run, monkeypatch):
    _, out, config = full_run
    report = json.loads((out / "report.json").read_text())
    chosen = report["engines"][0]["chosen_threshold"]
    assert chosen["rule"] == "best balanced accuracy"
    assert report["threshold_written"]["threshold"] == pytest.approx(chosen["threshold"], abs=1e-4)
    settings = settings_from_env({"FACEREC_CONFIG": str(config)})
    assert settings.model == "facenet128"  # the file's other lines are kept
    assert settings.effective_threshold == report["threshold_written"]["threshold"]


def test_threshold_at_an_unresolvable_fmr_is_refused(real_pipeline, samples_dir, tmp_path, capsys):
    config = tmp_path / "facerec.toml"
    # val only: 25 photos, ~250 impostor pairs, cannot resolve FMR 0.1%.
    rc = main([str(samples_dir / "val"), "--out", str(tmp_path / "r"), "--write-threshold",
               "--threshold-at-fmr", "0.001", "--config", str(config), "--no-plots", "--no-progress"],
              pipeline=real_pipeline)
    assert rc == 2
    assert "not enough impostor pairs" in capsys.readouterr().err
    assert not config.exists()


def few_photos(samples_dir, tmp_path, people=("ben_afflek", "madonna", "elton_john"), per_person=3):
    root = tmp_path / "photos"
    for person in people:
        (root / person).mkdir(parents=True)
        for path in sorted((samples_dir / "val" / person).glob("*.jpg"))[:per_person]:
            shutil.copy(path, root / person / path.name)
    return root


def test_pairs_csv_gives_verification_only(real_pipeline, samples_dir, tmp_path):
    root = few_photos(samples_dir, tmp_path)
    a = sorted((root / "ben_afflek").glob("*.jpg"))
    b = sorted((root / "madonna").glob("*.jpg"))
    csv = root / "pairs.csv"
    csv.write_text("path_a,path_b,same\n"
                   f"ben_afflek/{a[0].name},ben_afflek/{a[1].name},1\n"
                   f"madonna/{b[0].name},madonna/{b[1].name},yes\n"
                   f"ben_afflek/{a[0].name},madonna/{b[0].name},0\n"
                   f"{a[2]},{b[2]},no\n")
    report = evaluate(load_dataset([csv]), real_pipeline, tmp_path / "r",
                      Options(plots=False, progress=False))
    [ours] = report["engines"]
    assert report["dataset"]["mode"] == "pairs CSV" and report["dataset"]["photos"] == 6
    assert ours["verification"]["genuine_pairs"] == 2 and ours["verification"]["impostor_pairs"] == 2
    assert ours["verification"]["eer"] == 0.0  # two clear genuine pairs vs two impostors
    assert ours["identification"] is None


def test_side_by_side_with_face_recognition(real_pipeline, samples_dir, tmp_path):
    root = few_photos(samples_dir, tmp_path)
    report = evaluate(load_dataset([root]), real_pipeline, tmp_path / "r",
                      Options(compare_face_recognition=True, plots=True, progress=False))
    ours, dlib = report["engines"]
    assert dlib["engine"] == "face_recognition (dlib)"
    assert dlib["default_threshold"]["threshold"] == 0.6
    for engine in (ours, dlib):
        assert engine["photos"]["total"] == 9
        assert engine["seconds_per_photo"]["mean"] > 0
        assert engine["identification"]["top1_accuracy"] == 1.0
    # Distances: a genuine pair is closer than the threshold, which is a distance in (0, 2).
    assert 0 < dlib["verification"]["best_accuracy"]["threshold"] < 2
    table = (tmp_path / "r" / "report.md").read_text()
    assert "| facerec (facenet128) | face_recognition (dlib) |" in table
