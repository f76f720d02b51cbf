"""The metric code against cases small enough to work out by hand (shown in comments)."""

from __future__ import annotations

import numpy as np
import pytest

from facerec import metrics

# genuine 0.9 0.8 0.7 0.4 ; impostor 0.1 0.2 0.3 0.5
GENUINE = [0.9, 0.8, 0.7, 0.4]
IMPOSTOR = [0.1, 0.2, 0.3, 0.5]


def test_roc_counts_accepts_at_or_above_each_threshold():
    curve = metrics.roc(GENUINE, IMPOSTOR)
    assert curve.thresholds[0] > 0.9
    assert curve.thresholds[1:].tolist() == [0.9, 0.8, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert curve.fmr.tolist() == [0, 0, 0, 0, 0.25, 0.25, 0.5, 0.75, 1]
    assert curve.fnmr.tolist() == [1, 0.75, 0.5, 0.25, 0.25, 0, 0, 0, 0]


def test_eer_on_an_exact_crossing():
    # At t=0.5: FMR = 1/4 (0.5 accepted), FNMR = 1/4 (0.4 rejected).
    result = metrics.eer(GENUINE, IMPOSTOR)
    assert result.eer == pytest.approx(0.25)
    assert result.threshold == pytest.approx(0.5)


def test_eer_interpolates_between_points():
    # genuine 0.9 0.6 0.5, impostor 0.7 0.3: at t=0.7 FMR 1/2 FNMR 2/3, at t=0.6 FMR 1/2
    # FNMR 1/3: the crossing is halfway, EER 1/2 at t=0.65.
    result = metrics.eer([0.9, 0.6, 0.5], [0.7, 0.3])
    assert result.eer == pytest.approx(0.5)
    assert result.threshold == pytest.approx(0.65)


def test_eer_is_zero_when_separable():
    result = metrics.eer([0.8, 0.9], [0.1, 0.2])
    assert result.eer == 0
    assert 0.2 < result.threshold <= 0.8


def test_best_accuracy_takes_the_highest_best_threshold_midway():
    # Balanced accuracy is 7/8 accepting >= 0.7 (one genuine missed) and >= 0.4 (one
    # impostor accepted); the higher wins, placed midway between 0.7 and the next score 0.5.
    best = metrics.best_accuracy_threshold(GENUINE, IMPOSTOR)
    assert best.threshold == pytest.approx(0.6)
    assert best.balanced_accuracy == pytest.approx(0.875)
    assert best.accuracy == pytest.approx(7 / 8)
    assert (best.fmr, best.fnmr) == (0.0, 0.25)


def test_fnmr_at_fmr_picks_the_lowest_threshold_within_the_target():
    genuine = [0.95, 0.85, 0.6, 0.3]
    impostor = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.7]
    # FMR <= 10% allows one impostor (0.7) through; lowering t to 0.6 still accepts only
    # it and rescues genuine 0.6, so FNMR = 1/4; t=0.5 would make FMR 20%.
    point = metrics.fnmr_at_fmr(genuine, impostor, 0.1)
    assert point == metrics.OperatingPoint(0.6, 0.1, 0.25)
    assert metrics.fnmr_at_fmr(genuine, impostor, 0.2).fnmr == 0.25  # t=0.5 accepts 0.5 too


def test_fnmr_at_fmr_needs_enough_impostors():
    assert metrics.fnmr_at_fmr(GENUINE, IMPOSTOR, 0.25) is not None  # 4 impostors: 1/4 ok
    assert metrics.fnmr_at_fmr(GENUINE, IMPOSTOR, 0.1) is None       # 4 < 1/0.1


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        metrics.roc([], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        metrics.eer([0.5, np.nan], [0.1])


def open_set_case():
    enrolled = ["A", "B"]
    scores = [[0.9, 0.2],   # A: right, 0.9
              [0.3, 0.5],   # A: top is B, a miss at any threshold
              [0.1, 0.6],   # B: right, 0.6
              [0.4, 0.2],   # C (not enrolled): best 0.4
              [0.1, 0.55]]  # D (not enrolled): best 0.55
    return metrics.identification(scores, enrolled, ["A", "A", "B", "C", "D"])


def test_identification_rank1_outcomes():
    result = open_set_case()
    assert result.mated_hit_scores.tolist() == [0.9, -np.inf, 0.6]
    assert result.nonmated_top_scores.tolist() == [0.4, 0.55]
    assert metrics.top1_accuracy(result) == pytest.approx(2 / 3)
    assert metrics.fpir(result, 0.5) == 0.5
    assert metrics.fnir(result, 0.5) == pytest.approx(1 / 3)
    assert metrics.fnir(result, 0.7) == pytest.approx(2 / 3)


def test_fnir_at_fpir():
    result = open_set_case()
    # FPIR <= 1/2 allows D (0.55) through: lowest such threshold 0.55; FNIR = 1/3 (the
    # probe whose top candidate is wrong). FPIR 0 needs t above 0.55: t = 0.6, FNIR 1/3.
    assert metrics.fnir_at_fpir(result, 0.5) == metrics.OperatingPoint(0.55, 0.5, pytest.approx(1 / 3))
    assert metrics.fnir_at_fpir(result, 0.1) is None  # 2 non-mated probes < 1/0.1


def test_identification_without_non_mated_probes():
    result = metrics.identification([[0.8, 0.1], [0.2, 0.7]], ["A", "B"], ["A", "B"])
    assert metrics.top1_accuracy(result) == 1.0
    assert len(result.nonmated_top_scores) == 0
    assert metrics.fnir_at_fpir(result, 0.01) is None
