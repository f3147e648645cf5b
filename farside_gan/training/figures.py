"""Figures of training: the preview of a step and the loss curves."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from farside_gan.core.figures import magnetogram_cmap, show_image


def preview_figure(stack: np.ndarray, real: np.ndarray, generated: np.ndarray,
                   title: str = "") -> Figure:
    """Training preview: each input channel, the real and the generated target ([-1, 1])."""
    n = stack.shape[0] + 2
    fig = Figure(figsize=(2.4 * n, 2.6))
    axes = fig.subplots(1, n)
    for i, channel in enumerate(stack):
        show_image(axes[i], channel, f"input {i + 1}", 1.0, "gray")
    # fields are small in units of the clip (3000 G): scale both maps to the real one's range
    vmax = max(float(np.percentile(np.abs(real), 99.5)), 0.01)
    show_image(axes[-2], real, f"real (+-{vmax:.2g})", vmax, magnetogram_cmap())
    show_image(axes[-1], generated, "generated", vmax, magnetogram_cmap())
    fig.suptitle(title, fontsize=9)
    return fig


def losses_figure(rows: list[dict]) -> Figure:
    """Training losses against step (``losses.csv``): the discriminator's, the generator's GAN,
    feature-matching and (when used) correlation and scale terms; the learning rate on a second
    axis."""
    steps = np.array([float(r["step"]) for r in rows])
    fig = Figure(figsize=(7.0, 3.6))
    ax = fig.add_subplot()
    names = {"loss_D": "D (LSGAN)", "loss_G_gan": "G GAN", "loss_G_fm": "G feature matching",
             "loss_G_cc": "G correlation", "loss_G_scale": "G scale", "loss_G": "G total"}
    for key, label in names.items():
        values = [float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows]
        if np.isfinite(values).any():
            ax.plot(steps, values, ".-" if len(rows) < 50 else "-", lw=1, ms=4, label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if rows and rows[0].get("lr") not in (None, ""):
        lr = ax.twinx()
        lr.plot(steps, [float(r["lr"]) for r in rows], color="0.5", ls=":", lw=1)
        lr.set_ylabel("learning rate (dotted)", color="0.4")
        lr.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper right")
    last_epoch = int(float(rows[-1]["epoch"])) + 1 if rows else 0  # losses.csv counts from 0
    ax.set_title(f"Training losses: {len(rows)} logged steps, to epoch {last_epoch}", fontsize=9)
    return fig

