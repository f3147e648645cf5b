"""The loss figure (the report shows it): one line per logged loss term."""

from __future__ import annotations


def test_loss_figure_plots_each_logged_term():
    from farside_gan.training.figures import losses_figure
    rows = [{"step": s, "epoch": 0, "lr": 2e-4, "loss_D": 0.5, "loss_G": 2.0, "loss_G_gan": 0.7,
             "loss_G_fm": 0.13, "loss_G_cc": "", "seconds": 1.0} for s in (10, 20, 30)]
    fig = losses_figure(rows)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == \
        ["D (LSGAN)", "G GAN", "G feature matching", "G total"]  # no empty correlation term
    assert list(ax.get_lines()[2].get_ydata()) == [0.13] * 3
    assert ax.get_xlabel() == "training step"
