"""Every command, given an unreadable or meaningless input, exits 1 with one line that names the
file and the problem, and leaves nothing that looks like a finished output.

The inputs are made the ways they go bad in practice: a file of zero bytes (an interrupted
copy), an HTML page where a file was expected (a proxy's or an archive's error page saved under
the file's name), binary garbage over a FITS file's NAXISn cards (a damaged copy), and a file
that is well formed but means nothing to the command (a FITS image without an instrument, JSON
or CSV of another shape, a torch file that is no checkpoint).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import REPO

from farside_gan.cli import main
from farside_gan.testing.bad_files import HTML_ANSWER, garble_naxis_cards



@pytest.fixture(scope="module")
def good(tmp_path_factory, synthetic_archive):
    """A valid input for every command, each made by the commands themselves."""
    from helpers.model import write_manifest, write_pair

    from farside_gan.prepare.calibrate import load_calibration_tables
    from farside_gan.synthetic.archive import read_catalog
    d = tmp_path_factory.mktemp("good")
    assert main(["calibration-tables", str(d / "cal"), "--offline-demo"]) == 0
    load_calibration_tables.cache_clear()
    rows = [r for r in read_catalog(synthetic_archive) if r["time"].startswith("2011-01-01T00")]
    f = {"archive": synthetic_archive, "cal": d / "cal",
         "sun": synthetic_archive / "synthetic_sun.json"}
    for c in ("304", "193", "171"):
        f[f"raw{c}"] = synthetic_archive / next(r["path"] for r in rows
                                                if r["instrument"] == "aia" and r["channel"] == c)
        for stage, command, src, extra in (
                ("calibrated", "calibrate", "raw", ["--calibration-dir", str(d / "cal")]),
                ("aligned", "align", "calibrated", ["--size", "32", "--rsun-px", "14.0625"]),
                ("normalized", "normalize", "aligned", [])):
            f[f"{stage}{c}"] = d / f"{stage}{c}.fits"
            assert main([command, str(f[f"{src}{c}"]), str(f[f"{stage}{c}"]), *extra]) == 0
    f["stack"] = d / "stack.fits"
    assert main(["stack", str(f["stack"]), *(str(f[f"normalized{c}"])
                                              for c in ("304", "193", "171"))]) == 0
    f["manifest"] = write_manifest(d / "train", n_train=1, n=64)
    stack, _, _ = write_pair(d / "pairs", 0, 64)
    f["model_stack"] = stack
    f["generator"] = d / "run" / "generator.pt"
    assert main(["train", "--manifest", str(f["manifest"]), "--out-dir", str(d / "run"),
                 "--device", "cpu", *[a for s in ("ngf=4", "ndf=4", "n_downsample=2",
                                                  "n_residual=1", "epochs=1", "epoch_decay=0",
                                                  "progress=false", "num_threads=1")
                                      for a in ("--set", s)]]) == 0
    f["map"] = d / "maps" / "map.fits"
    assert main(["predict", "--checkpoint", str(f["generator"]), "--output", str(f["map"]),
                 "--device", "cpu", str(stack)]) == 0
    return f


# ----------------------------------------------------------------------------- bad files

def _meaningless_fits(path: Path) -> None:
    fits.PrimaryHDU(np.zeros((16, 16), np.float32)).writeto(path)


def _meaningless_checkpoint(path: Path) -> None:
    import torch
    torch.save({"weights": [1, 2, 3]}, path)


#: kind of input -> defect -> writer of a bad file of that kind at a path (given a good one)
DEFECTS = {
    "fits": {"empty": lambda p, good: p.write_bytes(b""),
             "html": lambda p, good: p.write_bytes(HTML_ANSWER),
             "garbled": lambda p, good: garble_naxis_cards(shutil.copy(good, p)),
             "meaningless": lambda p, good: _meaningless_fits(p)},
    "json": {"empty": lambda p, good: p.write_bytes(b""),
             "html": lambda p, good: p.write_bytes(HTML_ANSWER),
             "meaningless": lambda p, good: p.write_text(json.dumps({"answer": 42}))},
    "csv": {"empty": lambda p, good: p.write_bytes(b""),
            "html": lambda p, good: p.write_bytes(HTML_ANSWER),
            "meaningless": lambda p, good: p.write_text("a,b\n1,2\n")},
    "yaml": {"html": lambda p, good: p.write_bytes(HTML_ANSWER),
             "meaningless": lambda p, good: p.write_text("- 1\n- 2\n")},
    "checkpoint": {"empty": lambda p, good: p.write_bytes(b""),
                   "html": lambda p, good: p.write_bytes(HTML_ANSWER),
                   "meaningless": lambda p, good: _meaningless_checkpoint(p)},
}


def _catalog_archive(bad: Path) -> tuple[str, Path]:
    """An archive directory whose catalog is ``bad``, with a checksum that vouches for it (an
    archive that publishes garbage); returns the directory and the catalog."""
    from farside_gan.core.instruments import CATALOG_NAME, catalog_checksum_line
    root = bad.parent / "archive"
    root.mkdir()
    catalog = Path(shutil.move(bad, root / CATALOG_NAME))
    (root / f"{CATALOG_NAME}.sha256").write_text(catalog_checksum_line(catalog.read_bytes()))
    return str(root), catalog


def _prepared_dir(bad: Path) -> tuple[str, Path]:
    """A prepared period directory whose ``records.json`` is ``bad``; returns the directory
    and the index."""
    d = bad.parent / "prepared"
    d.mkdir()
    return str(d), Path(shutil.move(bad, d / "records.json"))


def _plain(argv):
    """A command given the bad file as it is: it must name the bad file."""
    return lambda g, bad, out: (argv(g, str(bad), out), bad)


def _archive(argv):
    def build(g, bad, out):
        root, catalog = _catalog_archive(bad)
        return argv(g, root, out), catalog
    return build


def _prepared(argv):
    def build(g, bad, out):
        d, index = _prepared_dir(bad)
        return argv(g, d, out), index
    return build


_TINY = [a for s in ("ngf=4", "ndf=4", "n_downsample=2", "n_residual=1", "epochs=1",
                     "epoch_decay=0", "progress=false", "num_threads=1") for a in ("--set", s)]

#: case -> (subcommand, kind of the bad input, key of a good input of that kind, builder of
#: (argv, the file the error must name) from the good inputs, the bad file and an output
#: directory)
COMMANDS = {
    "calibrate": ("calibrate", "fits", "raw171", _plain(lambda g, bad, out: [
        "calibrate", bad, f"{out}/c.fits", "--calibration-dir", str(g["cal"])])),
    "align": ("align", "fits", "calibrated171", _plain(lambda g, bad, out: [
        "align", bad, f"{out}/a.fits", "--size", "32", "--rsun-px", "14.0625"])),
    "normalize": ("normalize", "fits", "aligned171", _plain(lambda g, bad, out: [
        "normalize", bad, f"{out}/n.fits"])),
    "stack": ("stack", "fits", "normalized193", _plain(lambda g, bad, out: [
        "stack", f"{out}/s.fits", str(g["normalized304"]), bad, str(g["normalized171"])])),
    "predict": ("predict", "fits", "model_stack", _plain(lambda g, bad, out: [
        "predict", "--checkpoint", str(g["generator"]), "--output", f"{out}/p.fits",
        "--device", "cpu", bad])),
    "predict --checkpoint": ("predict", "checkpoint", "generator", _plain(lambda g, bad, out: [
        "predict", "--checkpoint", bad, "--output", f"{out}/p.fits", "--device", "cpu",
        str(g["model_stack"])])),
    "manifest --stacks": ("manifest", "fits", "stack", _plain(lambda g, bad, out: [
        "manifest", "--out", f"{out}/manifest.csv", "--stacks", bad])),
    "manifest --records": ("manifest", "json", None, _plain(lambda g, bad, out: [
        "manifest", "--out", f"{out}/manifest.csv", "--records", bad])),
    "manifest --prepared": ("manifest", "json", None, _prepared(lambda g, d, out: [
        "manifest", "--out", f"{out}/manifest.csv", "--prepared", d])),
    "prepare": ("prepare", "json", None, _plain(lambda g, bad, out: [
        "prepare", "--instrument", "aia", "--fetch-index", bad, "--out-dir", f"{out}/prepared",
        "--calibration-dir", str(g["cal"]), "--size", "32", "--rsun-px", "14.0625"])),
    "train --manifest": ("train", "csv", "manifest", _plain(lambda g, bad, out: [
        "train", "--manifest", bad, "--out-dir", f"{out}/run", "--device", "cpu", *_TINY])),
    "train --config": ("train", "yaml", None, _plain(lambda g, bad, out: [
        "train", "--manifest", str(g["manifest"]), "--config", bad, "--out-dir", f"{out}/run",
        "--device", "cpu"])),
    "plan": ("plan", "yaml", None, _plain(lambda g, bad, out: ["plan", bad])),
    "fetch": ("fetch", "csv", None, _archive(lambda g, root, out: [
        "fetch", "--source", root, "--instrument", "aia", "--channel", "171",
        "--time", "2011-01-01T00:00", "--out-dir", f"{out}/frame", "--retries", "0"])),
    "fetch-period": ("fetch-period", "csv", None, _archive(lambda g, root, out: [
        "fetch-period", "--source", root, "--instrument", "aia", "--times", "2011-01-01T00:00",
        "--out-dir", f"{out}/period", "--index", f"{out}/period/records.json",
        "--retries", "0"])),
    "synth-truth --sun": ("synth-truth", "json", None, _plain(lambda g, bad, out: [
        "synth-truth", "--sun", bad, "--prepared", str(g["archive"]), "--out-dir", f"{out}/t"])),
    "synth-truth --prepared": ("synth-truth", "json", None, _prepared(lambda g, d, out: [
        "synth-truth", "--sun", str(g["sun"]), "--prepared", d, "--out-dir", f"{out}/t"])),
    "synchronic": ("synchronic", "fits", "map", _plain(lambda g, bad, out: [
        "synchronic", "--input", f"stereo_a={bad}", "--time", "2011-01-01T00:00",
        "--output", f"{out}/s.fits", "--pixels", "36", "18"])),
    "calibrate-uncertainty": ("calibrate-uncertainty", "fits", "map", _plain(
        lambda g, bad, out: ["calibrate-uncertainty", "--pair", str(Path(bad).parent),
                             str(Path(bad).parent), "--out", f"{out}/calibration.json"])),
    "quicklook": ("quicklook", "fits", "map", _plain(lambda g, bad, out: [
        "quicklook", bad, f"{out}/q.png"])),
}

CASES = [(case, defect) for case, (_, kind, _, _) in COMMANDS.items() for defect in DEFECTS[kind]]


@pytest.mark.parametrize("case, defect", CASES)
def test_a_bad_input_is_one_line_naming_it_and_leaves_no_output(good, case, defect, tmp_path,
                                                                 capsys):
    command, kind, good_key, build = COMMANDS[case]
    bad = tmp_path / "in" / ("bad.fits" if kind == "fits" else f"bad.{kind}")
    bad.parent.mkdir()
    DEFECTS[kind][defect](bad, good.get(good_key))
    out = tmp_path / "out"
    out.mkdir()
    argv, named = build(good, bad, out)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rc = main(argv)
        except SystemExit as exc:  # the commands' own usage errors print their one line
            rc = exc.code if isinstance(exc.code, int) else 1
            if not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, (rc, err)
    assert lines[0].startswith(f"farside-gan {command}: error: {named}"), (str(named), err)
    assert len(lines[0]) > len(f"farside-gan {command}: error: {named}: ") + 10, err  # a problem
    # what astropy and the others say besides the error would print as one line each
    assert all("\n" not in str(w.message) for w in caught), [str(w.message) for w in caught]
    left = [p for p in out.rglob("*") if p.is_file()]
    assert left == [], left


@pytest.mark.parametrize("start, end, words", [
    ("yesterday", "2011-01-01T00:00", "--start/--end: Invalid isoformat string: 'yesterday'"),
    ("2011-01-02T00:00", "2011-01-01T00:00", "--end 2011-01-01T00:00 is before --start "
     "2011-01-02T00:00: no times to observe"),
])
def test_synth_archive_refuses_times_it_cannot_observe(start, end, words, tmp_path, capsys):
    """Not a traceback, and not an empty archive that a fetch would take for one."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["synth-archive", str(tmp_path / "archive"), "--start", start, "--end", end])
    assert str(exit_.value) == f"farside-gan synth-archive: error: {words}"
    assert not (tmp_path / "archive").exists()


def test_serve_archive_refuses_a_directory_that_is_no_archive(tmp_path):
    """At once, instead of serving 404s for ever (a subprocess: the test must not hang)."""
    done = subprocess.run([sys.executable, "-m", "farside_gan", "serve-archive", str(tmp_path)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"farside-gan serve-archive: error: {tmp_path}: not an archive: it has no catalog.csv "
        "(farside-gan synth-archive writes one)"], done.stderr
