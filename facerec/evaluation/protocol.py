"""The two evaluation protocols, over one engine's embeddings.

Verification: every genuine pair (two photos of one person) and every impostor pair (or
a seeded sample of them when there are more than `max_impostor_pairs`), photo against
photo; in pairs-CSV mode, the listed pairs.

Open-set identification, as the service searches: the people are split (seeded) into
folds; in each fold one fold's people are never enrolled, everyone else enrols their
first K photos (default: half, at least one, leaving one to probe) and is probed with the
rest. A probe's score for a person is the max over that person's enrolled faces, as the
service groups matches by user. Over all folds every person is left out once, so every
photo also serves as a probe of someone not enrolled.

Pairs or probes that involve a photo where the engine found no face (or that could not be
read) cannot be scored: they are counted, not silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facerec import metrics
from facerec.evaluation.data import Dataset
from facerec.evaluation.engines import Embeddings, Engine


@dataclass
class Pairs:
    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    impostor_total: int   # impostor pairs that exist
    impostor_sampled: bool


def make_pairs(dataset: Dataset, max_impostor_pairs: int = 1_000_000, seed: int = 0) -> Pairs:
    if dataset.pairs is not None:
        a, b, same = (np.array(x) for x in zip(*dataset.pairs))
        return Pairs(a, b, same.astype(bool), int((~same.astype(bool)).sum()), False)
    labels = np.array([p.identity for p in dataset.photos])
    n = len(labels)
    a_all, b_all = np.triu_indices(n, k=1)
    same_all = labels[a_all] == labels[b_all]
    genuine = np.flatnonzero(same_all)
    impostor = np.flatnonzero(~same_all)
    sampled = len(impostor) > max_impostor_pairs
    if sampled:
        impostor = np.sort(np.random.default_rng(seed).choice(impostor, max_impostor_pairs, replace=False))
    keep = np.concatenate([genuine, impostor])
    return Pairs(a_all[keep], b_all[keep], same_all[keep], int((~same_all).sum()), sampled)


@dataclass
class Verification:
    genuine_pairs: int        # scored
    impostor_pairs: int       # scored
    impostor_pairs_available: int
    impostor_sampled: bool
    genuine_pairs_without_face: int   # not scorable: a photo without a face (or unreadable)
    impostor_pairs_without_face: int
    eer: metrics.Eer
    best_accuracy: metrics.BestAccuracy
    at_fmr: dict[str, metrics.OperatingPoint | None]
    genuine_scores: np.ndarray = field(repr=False)
    impostor_scores: np.ndarray = field(repr=False)


def verify(pairs: Pairs, emb: Embeddings, engine: Engine,
           fmr_targets: tuple[float, ...] = (0.01, 0.001, 0.0001)) -> Verification:
    ok = emb.found[pairs.a] & emb.found[pairs.b]
    scores = _rowwise(engine, emb.vectors[pairs.a[ok]], emb.vectors[pairs.b[ok]])
    same = pairs.same[ok]
    genuine, impostor = scores[same], scores[~same]
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError(f"{emb.engine}: need at least one genuine and one impostor pair with faces "
                         f"found (got {len(genuine)} and {len(impostor)})")
    return Verification(
        genuine_pairs=len(genuine), impostor_pairs=len(impostor),
        impostor_pairs_available=pairs.impostor_total, impostor_sampled=pairs.impostor_sampled,
        genuine_pairs_without_face=int((pairs.same & ~ok).sum()),
        impostor_pairs_without_face=int((~pairs.same & ~ok).sum()),
        eer=metrics.eer(genuine, impostor),
        best_accuracy=metrics.best_accuracy_threshold(genuine, impostor),
        at_fmr={f"{t:g}": metrics.fnmr_at_fmr(genuine, impostor, t) for t in fmr_targets},
        genuine_scores=genuine, impostor_scores=impostor,
    )


def _rowwise(engine: Engine, va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """engine.similarity of each row of va with the same row of vb."""
    out = np.empty(len(va))
    for start in range(0, len(va), 256):  # small blocks, keeping each block's diagonal
        block = engine.similarity(va[start:start + 256], vb[start:start + 256])
        out[start:start + len(block)] = np.diagonal(block)
    return out


@dataclass
class Identification:
    folds: int
    enroll_per_person: str
    enrolled_faces: int            # gallery faces, summed over folds
    mated_probes: int              # scored probes of enrolled people, over folds
    nonmated_probes: int           # scored probes of people not enrolled, over folds
    probes_without_face: int       # not scorable
    enrollment_photos_without_face: int
    top1_accuracy: float | None
    at_fpir: dict[str, metrics.OperatingPoint | None]
    result: metrics.Identification = field(repr=False)


def enrollment_split(count: int, enroll: int | None) -> int:
    """How many of a person's `count` photos are enrolled: `enroll`, or half by default;
    at least one, and one fewer than all when there is more than one."""
    k = count // 2 if enroll is None else enroll
    return max(1, min(k, count - 1)) if count > 1 else 1


def identify(dataset: Dataset, emb: Embeddings, engine: Engine, *, enroll: int | None = None,
             unenrolled_fraction: float = 0.2, seed: int = 0,
             fpir_targets: tuple[float, ...] = (0.01, 0.1)) -> Identification | None:
    """None in pairs mode or with fewer than two people."""
    people = dataset.people
    if dataset.pairs is not None or len(people) < 2:
        return None
    rows = {person: [n for n, p in enumerate(dataset.photos) if p.identity == person] for person in people}
    order = list(np.random.default_rng(seed).permutation(len(people)))
    folds = min(len(people), max(1, round(1 / unenrolled_fraction)))
    hits, nonmated, correct = [], [], []
    gallery_total = probes_missing = enroll_missing = 0
    for fold in range(folds):
        left_out = {people[i] for i in order[fold::folds]}
        gallery_rows, gallery_owner, probe_rows, probe_identity = [], [], [], []
        for person in people:
            photos = rows[person]
            if person in left_out:
                probe_rows += photos
                probe_identity += [person] * len(photos)
                continue
            k = enrollment_split(len(photos), enroll)
            for n in photos[:k]:
                if emb.found[n]:
                    gallery_rows.append(n)
                    gallery_owner.append(person)
                else:
                    enroll_missing += 1
            probe_rows += photos[k:]
            probe_identity += [person] * (len(photos) - k)
        enrolled = sorted(set(gallery_owner))
        usable = [(r, p) for r, p in zip(probe_rows, probe_identity)
                  if emb.found[r] and (p in enrolled or p in left_out)]
        probes_missing += sum(1 for r in probe_rows if not emb.found[r])
        gallery_total += len(gallery_rows)
        if not usable or not enrolled:
            continue
        sims = engine.similarity(emb.vectors[[r for r, _ in usable]], emb.vectors[gallery_rows])
        owner = np.array(gallery_owner)
        per_person = np.stack([sims[:, owner == person].max(axis=1) for person in enrolled], axis=1)
        fold_result = metrics.identification(per_person, enrolled, [p for _, p in usable])
        hits.append(fold_result.mated_hit_scores)
        nonmated.append(fold_result.nonmated_top_scores)
        correct.append(fold_result.top1_correct)
    result = metrics.Identification(
        np.concatenate(hits) if hits else np.zeros(0),
        np.concatenate(nonmated) if nonmated else np.zeros(0),
        np.concatenate(correct) if correct else np.zeros(0, bool))
    return Identification(
        folds=folds, enroll_per_person="half (at least 1)" if enroll is None else str(enroll),
        enrolled_faces=gallery_total, mated_probes=len(result.mated_hit_scores),
        nonmated_probes=len(result.nonmated_top_scores), probes_without_face=probes_missing,
        enrollment_photos_without_face=enroll_missing, top1_accuracy=metrics.top1_accuracy(result),
        at_fpir={f"{t:g}": metrics.fnir_at_fpir(result, t) for t in fpir_targets}, result=result)
