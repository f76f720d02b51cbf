"""Biometric accuracy metrics over similarity scores (higher = more alike), pure numpy.

Verification (1:1): a pair is accepted when its score is ≥ the threshold t.
  FMR(t)  = share of impostor pairs accepted (false match rate)
  FNMR(t) = share of genuine pairs rejected (false non-match rate)
Open-set identification (1:N, ISO/IEC 19795-1, as in NIST FRVT), rank 1:
  FPIR(t) = share of probes of people NOT enrolled whose best score is ≥ t
  FNIR(t) = share of probes of enrolled people whose own identity is not the top
            candidate, or is but scores below t
An operating point "at FMR x" is the lowest threshold whose FMR is ≤ x. It exists only
when there are at least 1/x impostor scores (else one false match already exceeds x): the
functions return None then, and callers say "not enough impostor pairs".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Roc:
    """One point per distinct threshold, from the strictest (accept nothing) down."""

    thresholds: np.ndarray  # descending; the first is above every score
    fmr: np.ndarray         # non-decreasing
    fnmr: np.ndarray        # non-increasing


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    fmr: float
    fnmr: float


@dataclass(frozen=True)
class Eer:
    eer: float
    threshold: float


@dataclass(frozen=True)
class BestAccuracy:
    threshold: float
    balanced_accuracy: float  # 1 − (FMR + FNMR) / 2: genuine and impostor pairs weigh alike
    accuracy: float           # share of all pairs classified right at that threshold
    fmr: float
    fnmr: float


def _scores(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(array).any():
        raise ValueError("scores contain NaN")
    return array


def _above(scores: np.ndarray) -> float:
    """A threshold just above every score (accepts nothing)."""
    top = float(scores.max()) if len(scores) else 1.0
    return float(np.nextafter(top, np.inf))


def roc(genuine, impostor) -> Roc:
    genuine, impostor = _scores(genuine), _scores(impostor)
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError("need at least one genuine and one impostor score")
    both = np.concatenate([genuine, impostor])
    distinct = np.unique(both)[::-1]
    thresholds = np.concatenate([[_above(both)], distinct])
    g, i = np.sort(genuine), np.sort(impostor)
    # accepted(t) = count of scores >= t
    fmr = (len(i) - np.searchsorted(i, thresholds, side="left")) / len(i)
    fnmr = np.searchsorted(g, thresholds, side="left") / len(g)
    return Roc(thresholds, fmr, fnmr)


def fnmr_at_fmr(genuine, impostor, target: float) -> OperatingPoint | None:
    """The lowest-FNMR point with FMR ≤ target, or None if fewer than 1/target impostor
    scores exist (that FMR cannot be resolved)."""
    impostor = _scores(impostor)
    if len(impostor) < round(1 / target):
        return None
    curve = roc(genuine, impostor)
    ok = np.flatnonzero(curve.fmr <= target + 1e-12)
    best = ok[-1]  # the lowest threshold still within the target (FNMR is non-increasing)
    return OperatingPoint(float(curve.thresholds[best]), float(curve.fmr[best]), float(curve.fnmr[best]))


def eer(genuine, impostor) -> Eer:
    """Equal error rate: where FMR and FNMR cross, linearly interpolated between the two
    ROC points around the crossing (threshold interpolated the same way)."""
    curve = roc(genuine, impostor)
    gap = curve.fnmr - curve.fmr  # starts at 1 (accept nothing), ends ≤ 0 (accept all)
    b = int(np.argmax(gap <= 0))
    if b == 0:
        return Eer(float(curve.fmr[0]), float(curve.thresholds[0]))
    a = b - 1
    frac = gap[a] / (gap[a] - gap[b])
    rate = curve.fmr[a] + frac * (curve.fmr[b] - curve.fmr[a])
    if a == 0:  # the "accept nothing" point has no real threshold to interpolate from
        threshold = curve.thresholds[b]
    else:
        threshold = curve.thresholds[a] + frac * (curve.thresholds[b] - curve.thresholds[a])
    return Eer(float(rate), float(threshold))


def best_accuracy_threshold(genuine, impostor) -> BestAccuracy:
    """The threshold with the highest balanced accuracy; on ties the highest one (fewest
    false matches). It is placed midway between the lowest accepted score and the next
    lower score, so that it does not sit on a measured value."""
    genuine, impostor = _scores(genuine), _scores(impostor)
    curve = roc(genuine, impostor)
    balanced = 1 - (curve.fmr + curve.fnmr) / 2
    best = int(np.argmax(balanced))  # argmax: first = highest threshold on ties
    if best + 1 < len(curve.thresholds):
        threshold = (curve.thresholds[best] + curve.thresholds[best + 1]) / 2
    else:
        threshold = curve.thresholds[best]
    fmr = float(np.mean(impostor >= threshold))
    fnmr = float(np.mean(genuine < threshold))
    correct = np.sum(genuine >= threshold) + np.sum(impostor < threshold)
    return BestAccuracy(float(threshold), float(balanced[best]),
                        float(correct / (len(genuine) + len(impostor))), fmr, fnmr)


# --- open-set identification -----------------------------------------------------------

@dataclass(frozen=True)
class Identification:
    """Per-probe rank-1 outcomes, computed once from a probes × enrolled score matrix."""

    mated_hit_scores: np.ndarray  # per enrolled-person probe: its top score if the top
                                  # candidate is its own identity, else −inf (always a miss)
    nonmated_top_scores: np.ndarray  # per not-enrolled probe: its best score
    top1_correct: np.ndarray      # per enrolled-person probe: top candidate is right


def identification(scores, enrolled: list, probe_identity: list) -> Identification:
    """scores[p, j]: similarity of probe p to enrolled identity enrolled[j] (e.g. the max
    over that person's enrolled faces). probe_identity[p] is the probe's true identity;
    identities not in `enrolled` make non-mated probes."""
    scores = np.asarray(scores, dtype=np.float64).reshape(len(probe_identity), len(enrolled))
    column = {name: j for j, name in enumerate(enrolled)}
    mated = np.array([p in column for p in probe_identity], dtype=bool)
    if scores.shape[1] == 0:
        top = np.full(len(probe_identity), -1)
        top_score = np.full(len(probe_identity), -np.inf)
    else:
        top = np.argmax(scores, axis=1)
        top_score = scores[np.arange(len(top)), top]
    correct = np.array([column.get(p, -2) == t for p, t in zip(probe_identity, top)], dtype=bool)
    hits = np.where(correct, top_score, -np.inf)[mated]
    return Identification(hits, top_score[~mated], correct[mated])


def top1_accuracy(result: Identification) -> float | None:
    """Closed-set rank-1 accuracy over probes of enrolled people (no threshold)."""
    return float(result.top1_correct.mean()) if len(result.top1_correct) else None


def fpir(result: Identification, threshold: float) -> float:
    return float(np.mean(result.nonmated_top_scores >= threshold))


def fnir(result: Identification, threshold: float) -> float:
    return float(np.mean(result.mated_hit_scores < threshold))


def fnir_at_fpir(result: Identification, target: float) -> OperatingPoint | None:
    """FNIR at the lowest threshold whose FPIR is ≤ target (fields fmr/fnmr hold FPIR and
    FNIR), or None with fewer than 1/target non-mated probes or no mated probe."""
    nonmated = result.nonmated_top_scores
    if len(nonmated) < round(1 / target) or len(result.mated_hit_scores) == 0:
        return None
    finite = result.mated_hit_scores[np.isfinite(result.mated_hit_scores)]
    candidates = np.unique(np.concatenate([nonmated, finite]))[::-1]
    thresholds = np.concatenate([[_above(np.concatenate([nonmated, finite]))], candidates])
    sorted_nonmated = np.sort(nonmated)
    rates = (len(nonmated) - np.searchsorted(sorted_nonmated, thresholds, side="left")) / len(nonmated)
    chosen = thresholds[np.flatnonzero(rates <= target + 1e-12)[-1]]  # FPIR grows as t falls
    return OperatingPoint(float(chosen), fpir(result, chosen), fnir(result, chosen))
