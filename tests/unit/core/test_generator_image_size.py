"""An image size the generator cannot take (``image.size: 130`` with four downsamplings) is refused
where it is first known: while the workflow is planned, before any fetch or preparation job;
by ``train`` given such data; by ``predict`` given such a stack. One rule says which sizes the
generator takes (``check_image_size_for_generator``)."""

from __future__ import annotations

import json

import pytest

from farside_gan.core.header_checks import check_image_size_for_generator


@pytest.mark.parametrize("size, n_downsample", [(1024, 4), (32, 4), (128, 4), (8, 2), (64, 0),
                                                (2, 0)])
def test_sizes_halved_evenly_to_at_least_two_pixels_are_taken(size, n_downsample):
    check_image_size_for_generator(size, n_downsample)


@pytest.mark.parametrize("size, n_downsample, words", [
    (130, 4, "multiple of 16 and at least 32, not 130 (nearest: 128 or 144)"),
    (16, 4, "multiple of 16 and at least 32, not 16 (nearest: 32)"),
    (1000, 4, "not 1000 (nearest: 992 or 1008)"),
    (42, 2, "multiple of 4 and at least 8, not 42 (nearest: 40 or 44)"),
    (1, 0, "multiple of 1 and at least 2, not 1 (nearest: 2)"),
])
def test_other_sizes_are_refused_with_the_nearest_that_are_taken(size, n_downsample, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_image_size_for_generator(size, n_downsample)


def test_the_generator_takes_exactly_the_sizes_the_rule_lets_through():
    """The rule against the network itself: every size from 2 to 40 with two downsamplings
    comes out of the generator's layers at the size it went in, or the rule refuses it."""
    import torch

    from farside_gan.model.networks import GlobalGenerator
    generator = GlobalGenerator(3, 1, ngf=2, n_downsample=2, n_residual=1).eval()
    for size in range(2, 41):
        try:
            check_image_size_for_generator(size, 2)
            taken = True
        except ValueError:
            taken = False
        try:
            with torch.no_grad():  # its layers, past the size check of its forward()
                out = generator.model(torch.zeros(1, 3, size, size))
            works = out.shape[-2:] == (size, size)
        except (RuntimeError, ValueError):  # padding wider than the image; a 1 px instance norm
            works = False
        assert taken == works, size


def test_planning_refuses_an_image_size_the_generator_cannot_take(tmp_path):
    from helpers.workflow import DEMO_CONFIG, run_snakemake
    bad = tmp_path / "size.yaml"
    bad.write_text(json.dumps({"image": {"size": 130, "rsun_px": 57},
                               "model": {"n_downsample": 4}}))
    proc = run_snakemake(tmp_path, "-n", configfiles=[DEMO_CONFIG, bad], check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("config: image.size does not fit the generator (model.n_downsample 4): its 4 "
            "downsamplings need a size that is a multiple of 16 and at least 32, not 130 "
            "(nearest: 128 or 144)") in output, output[-3000:]
    assert "Job stats" not in output  # nothing was planned, let alone run


def test_train_refuses_data_of_a_size_the_generator_cannot_take(tmp_path, capsys):
    from helpers.model import write_manifest

    from farside_gan.cli import main
    manifest = write_manifest(tmp_path / "data", n_train=1, n=36)  # 36 = 4 x 9: not 8 x k
    capsys.readouterr()
    assert main(["train", "--manifest", str(manifest), "--out-dir", str(tmp_path / "run"),
                 "--device", "cpu", "--set", "n_downsample=3", "--set", "progress=false"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stack_000.fits: a 36 px stack does not fit the generator: " \
        "its 3 downsamplings need a size that is a multiple of 8 and at least 16, not 36 " \
        "(nearest: 32 or 40)" in err, err
    assert not (tmp_path / "run" / "generator.pt").exists()
