"""ROC, DET and score-histogram PNGs (matplotlib, an optional extra: requirements-eval.txt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerec import metrics
from facerec.evaluation.report import EngineResult

MATPLOTLIB_INSTALL = ("the plots need matplotlib: `.venv/bin/pip install -r requirements-eval.txt` "
                      "(or pass --no-plots)")


def require_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(MATPLOTLIB_INSTALL) from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def write_plots(results: list[EngineResult], out_dir: Path) -> list[Path]:
    plt = require_matplotlib()
    out_dir = Path(out_dir)
    curves = [(r, metrics.roc(r.verification.genuine_scores, r.verification.impostor_scores))
              for r in results]
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r, c in curves:
        floor = 1 / len(r.verification.impostor_scores)
        ax.plot(np.maximum(c.fmr, floor / 2), 1 - c.fnmr, drawstyle="steps-post",
                label=f"{r.engine.name} (EER {r.verification.eer.eer:.2%})")
    ax.set(xscale="log", xlabel="false match rate (FMR)", ylabel="true match rate (1 − FNMR)",
           title="Verification ROC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    paths.append(_save(fig, out_dir / "roc.png"))

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r, c in curves:
        floor_fmr = 1 / len(r.verification.impostor_scores)
        floor_fnmr = 1 / len(r.verification.genuine_scores)
        ax.plot(np.maximum(c.fmr, floor_fmr / 2), np.maximum(c.fnmr, floor_fnmr / 2),
                drawstyle="steps-post", label=r.engine.name)
    ax.set(xscale="log", yscale="log", xlabel="false match rate (FMR)",
           ylabel="false non-match rate (FNMR)", title="DET (zeros drawn at half the resolution)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    paths.append(_save(fig, out_dir / "det.png"))

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, r in zip(axes[0], results):
        to_unit = np.vectorize(r.engine.to_threshold)
        genuine, impostor = to_unit(r.verification.genuine_scores), to_unit(r.verification.impostor_scores)
        bins = np.linspace(min(genuine.min(), impostor.min()), max(genuine.max(), impostor.max()), 50)
        ax.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor ({len(impostor):,})")
        ax.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine ({len(genuine):,})")
        if r.chosen_threshold is not None:
            ax.axvline(r.chosen_threshold, color="k", linestyle="--",
                       label=f"chosen {r.chosen_threshold:.3f}")
        ax.set(title=r.engine.name, xlabel=r.engine.score_name.split(" (")[0].lstrip("−"),
               ylabel="density")
        ax.legend()
    paths.append(_save(fig, out_dir / "hist.png"))
    return paths


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
