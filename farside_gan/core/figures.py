"""What every figure of the pipeline shares (matplotlib's object API on Agg: no pyplot state):
sunpy's ``hmimag`` colormap for magnetograms, with symmetric limits in Gauss as the field shows
them, and saving atomically (:func:`save`). The figures themselves live with their stage:
``training.figures``, ``products.figures``, ``evaluation.figures``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from farside_gan.core.fitsio import atomic_output  # noqa: E402


def magnetogram_cmap():
    """sunpy's HMI magnetogram colormap (registered when sunpy.visualization is imported)."""
    import matplotlib as mpl
    import sunpy.visualization.colormaps  # noqa: F401  (registers 'hmimag')
    return mpl.colormaps["hmimag"]


def save(fig: Figure, path: str | Path, dpi: int = 90) -> Path:
    """The figure as a PNG, atomically, trimmed to what is drawn (no label cut off)."""
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.08)
    return Path(path)


def show_image(ax, image, title, vmax, cmap="gray"):
    im = ax.imshow(image, origin="lower", cmap=cmap, vmin=-vmax, vmax=vmax)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im

