"""Labelled photos for an evaluation: a folder per person, or a CSV of pairs."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from facerec.imaging import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str | None  # None in pairs mode: only the pairs say who matches whom


@dataclass
class Dataset:
    photos: list[Photo]
    # Pairs mode: (photo index, photo index, same person). Folder mode: None, every pair
    # of photos is a genuine or impostor pair.
    pairs: list[tuple[int, int, bool]] | None = None
    sources: list[str] = field(default_factory=list)

    @property
    def people(self) -> list[str]:
        return sorted({p.identity for p in self.photos if p.identity is not None})


_SAME = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def same_label(text: str) -> bool:
    try:
        return _SAME[text.strip().lower()]
    except KeyError:
        raise ValueError(text) from None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))


def load_folders(roots: list[Path]) -> Dataset:
    """ROOT/<person>/<photo>: one folder per person. Several roots are merged by person
    name (e.g. train/ and val/), photos in root order, then file name order; the first
    photos of a person are the ones enrolled in the identification protocol."""
    photos = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"{root} is not a folder")
        people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not people:
            raise ValueError(f"{root} has no person folders (expected {root}/<person>/<photo>.jpg)")
        for person in people:
            photos += [Photo(path, person.name) for path in _images(person)]
    by_person: dict[str, list[Photo]] = {}
    for photo in photos:
        by_person.setdefault(photo.identity, []).append(photo)
    ordered = [photo for person in sorted(by_person) for photo in by_person[person]]
    if not ordered:
        raise ValueError("no photos found")
    return Dataset(ordered, None, [str(r) for r in roots])


def load_pairs_csv(path: Path) -> Dataset:
    """Rows `path_a,path_b,same` (same: 1/0, true/false or yes/no); an optional header
    row; relative paths are relative to the CSV's folder."""
    path = Path(path)
    photos: list[Photo] = []
    index: dict[Path, int] = {}
    pairs = []

    def photo_index(text: str) -> int:
        p = Path(text.strip())
        p = p if p.is_absolute() else (path.parent / p)
        if p not in index:
            index[p] = len(photos)
            photos.append(Photo(p, None))
        return index[p]

    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 3:
                raise ValueError(f"{path}:{n}: expected path_a,path_b,same")
            try:
                same = same_label(row[2])
            except ValueError:
                if n == 1:
                    continue  # header
                raise ValueError(f"{path}:{n}: 'same' must be 1/0, true/false or yes/no, "
                                 f"not {row[2]!r}") from None
            pairs.append((photo_index(row[0]), photo_index(row[1]), same))
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return Dataset(photos, pairs, [str(path)])


def load_dataset(sources: list[Path]) -> Dataset:
    if len(sources) == 1 and Path(sources[0]).suffix.lower() == ".csv":
        return load_pairs_csv(Path(sources[0]))
    return load_folders([Path(s) for s in sources])
