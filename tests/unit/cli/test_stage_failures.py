"""A stage's command that cannot do its work says so in one line naming the file, not in a
traceback: a corrupt or incomplete header and a full disk give that one line at every stage, with
nothing partial left and an existing output intact; a killed job's temporary files are removed
by the next writer of that output."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from astropy.io import fits
from helpers import REPO

from farside_gan.cli import main
from farside_gan.core.fitsio import read_fits


def garble(path: Path, keyword: str) -> Path:
    """Overwrite ``keyword``'s card with an unparsable value, as a transfer error would."""
    raw = path.read_bytes()
    at = raw.index(keyword.ljust(8).encode() + b"=")
    path.write_bytes(raw[:at] + f"{keyword.ljust(8)}= 1.2.x".ljust(80).encode() + raw[at + 80:])
    return path


def drop_keyword(path: Path, keyword: str) -> Path:
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header[keyword]
    return path


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory, synthetic_archive):
    """One valid input per stage, made by the stages themselves from the synthetic archive:
    raw AIA frames, calibrated, aligned, normalized, a stack; a tiny generator and a stack it takes."""
    from helpers.model import write_pair

    from farside_gan.prepare.calibrate import load_calibration_tables, write_demo_calibration_tables
    from farside_gan.synthetic.archive import read_catalog
    d = tmp_path_factory.mktemp("stages")
    write_demo_calibration_tables(d / "cal")
    load_calibration_tables.cache_clear()
    rows = [r for r in read_catalog(synthetic_archive)
            if r["instrument"] == "aia" and r["time"].startswith("2011-01-01T00")]
    files = {}
    for row in sorted(rows, key=lambda r: ("304", "193", "171").index(r["channel"])):
        c = row["channel"]
        files[f"raw{c}"] = synthetic_archive / row["path"]
        for stage, src, args in (("calibrated", f"raw{c}", ["--calibration-dir", str(d / "cal")]),
                                 ("aligned", f"calibrated{c}", ["--size", "32", "--rsun-px", "14.0625"]),
                                 ("normalized", f"aligned{c}", [])):
            files[f"{stage}{c}"] = d / f"{stage}{c}.fits"
            command = {"calibrated": "calibrate", "aligned": "align", "normalized": "normalize"}[stage]
            assert main([command, str(files[src]), str(files[f"{stage}{c}"]), *args]) == 0
    files["stack"] = d / "stack.fits"
    assert main(["stack", str(files["stack"]), *(str(files[f"normalized{c}"])
                                                  for c in ("304", "193", "171"))]) == 0
    from farside_gan.training.data import PairedFitsDataset
    from farside_gan.training.trainer import TrainConfig, Trainer
    stack, target, _ = write_pair(d / "pairs", 0, 32)
    tiny = TrainConfig(ngf=4, ndf=4, n_downsample=2, n_residual=1, progress=False, num_threads=1)
    files["generator"] = Trainer(tiny, PairedFitsDataset([(stack, target)]), d / "run",
                                 device="cpu").save_generator()
    files["model_stack"] = stack
    files["cal"] = d / "cal"
    return files


#: stage -> (command line given IN and OUT, input file key, keyword the stage reads)
STAGES = {
    "calibrate": (lambda f, i, o: ["calibrate", i, o, "--calibration-dir", str(f["cal"])],
                  "raw171", "EXPTIME"),
    "align": (lambda f, i, o: ["align", i, o, "--size", "32", "--rsun-px", "14.0625"],
              "calibrated171", "CDELT1"),
    "normalize": (lambda f, i, o: ["normalize", i, o], "aligned171", "R_SUN"),
    "stack": (lambda f, i, o: ["stack", o, str(f["normalized304"]), i, str(f["normalized171"])],
              "normalized193", "NORMMED"),
    "predict": (lambda f, i, o: ["predict", "--checkpoint", str(f["generator"]), "--output", o,
                                 "--device", "cpu", i], "model_stack", "CHAN2"),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
@pytest.mark.parametrize("defect", ["unparsable", "missing"])
def test_corrupt_or_incomplete_header_is_one_line_at_every_stage(stage_inputs, stage, defect,
                                                                  tmp_path, capsys):
    command, key, keyword = STAGES[stage]
    src = tmp_path / f"in{Path(stage_inputs[key]).suffix}"
    shutil.copy(stage_inputs[key], src)
    (garble if defect == "unparsable" else drop_keyword)(src, keyword)
    out = tmp_path / "out" / "result.fits"
    capsys.readouterr()
    assert main(command(stage_inputs, str(src), str(out))) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"farside-gan {stage}: error: {src}: ") and keyword in err, err
    assert ("cannot be parsed" if defect == "unparsable" else "lacks") in err, err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


# ----------------------------------------------------------------------------- disk full

def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare") or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
                           capture_output=True)
    return probe.returncode == 0


FULL_DISK_SCRIPT = textwrap.dedent('''
    import contextlib, io, json, os, sys
    from pathlib import Path
    from farside_gan.cli import main
    disk, stages, result = Path(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])
    for name, (argv, old) in stages.items():   # every stage's output exists already...
        Path(old).parent.mkdir(parents=True, exist_ok=True)
        Path(old).write_bytes(b"the previous output of " + name.encode())
    with contextlib.suppress(OSError), open(disk / "filler", "wb", buffering=0) as fh:
        while True:                               # ...and then the disk fills up
            fh.write(b"x" * 4096)
    report = {}
    for name, (argv, old) in stages.items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except BaseException as exc:  # a traceback is what the test is against
                rc = f"{type(exc).__name__}: {exc}"
        report[name] = {"rc": rc, "stderr": err.getvalue(), "old": Path(old).read_text(),
                        "left": sorted(str(p.relative_to(disk)) for p in disk.rglob("*")
                                       if p.is_file())}
    result.write_text(json.dumps(report))
''')


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare and a tmpfs mount in a user namespace")
def test_a_full_disk_is_one_line_at_every_stage_and_outputs_stay_intact(stage_inputs, tmp_path):
    """A real full file system (a tmpfs in a private mount namespace): every stage fails with
    one line, leaves no temporary file and keeps the previous output byte for byte."""
    from helpers.model import write_manifest
    disk = tmp_path / "disk"
    disk.mkdir()
    manifest = write_manifest(tmp_path / "pairs", n_train=1, n=64)
    f = {k: str(v) for k, v in stage_inputs.items()}
    out = lambda name: str(disk / name)  # noqa: E731
    stages = {
        "calibrate": (["calibrate", f["raw171"], out("c.fits"), "--calibration-dir", f["cal"]], out("c.fits")),
        "align": (["align", f["calibrated171"], out("a.fits"), "--size", "32", "--rsun-px", "14"], out("a.fits")),
        "normalize": (["normalize", f["aligned171"], out("n.fits")], out("n.fits")),
        "stack": (["stack", out("s.fits"), f["normalized304"], f["normalized193"], f["normalized171"]],
                  out("s.fits")),
        "manifest": (["manifest", "--out", out("manifest.csv"), "--stacks", f["stack"]], out("manifest.csv")),
        "predict": (["predict", "--checkpoint", f["generator"], "--output", out("p.fits"), "--device", "cpu",
                     f["model_stack"]], out("p.fits")),
        "train": (["train", "--manifest", str(manifest), "--out-dir", out("model"), "--device", "cpu",
                   *[a for s in ("ngf=4", "ndf=4", "n_downsample=2", "n_residual=1", "epochs=1",
                                 "epoch_decay=0", "progress=false", "num_threads=1")
                     for a in ("--set", s)]], out("model/generator.pt")),
    }
    script, result = tmp_path / "full_disk.py", tmp_path / "result.json"
    script.write_text(FULL_DISK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = (f'mount -t tmpfs -o size=2m none "{disk}" && exec "{sys.executable}" "{script}" '
           f'"{disk}" \'{json.dumps(stages)}\' "{result}"')
    done = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(result.read_text())
    olds = {str(Path(old).relative_to(disk)) for _, old in stages.values()}
    for name, (argv, old) in stages.items():
        r = report[name]
        # astropy's own warnings (WCS 'datfix') may come before it: one error line, no traceback
        lines = [line for line in r["stderr"].strip().splitlines() if not line.startswith("WARNING: ")]
        assert r["rc"] == 1 and len(lines) == 1, (name, r)
        assert lines[0].startswith(f"farside-gan {argv[0]}: error: ") and "cannot write" in lines[0], r
        assert r["old"] == f"the previous output of {name}", r   # intact
        assert set(r["left"]) == olds | {"filler"}, r              # no temporary file left


# ----------------------------------------------------------------------------- temporaries

def _writer(path: Path) -> subprocess.Popen:
    """A job that dies (or sleeps) in the middle of writing ``path`` through atomic_output."""
    code = ("import sys, time\nfrom farside_gan.core.fitsio import atomic_output\n"
            f"with atomic_output({str(path)!r}, suffix='.fits') as tmp:\n"
            "    tmp.write_bytes(b'half a file')\n    print('writing', flush=True)\n    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temporaries(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def test_a_killed_jobs_temporary_file_is_removed_by_the_next_writer(stage_inputs, tmp_path):
    from farside_gan.core.fitsio import remove_stale_temporaries
    out = tmp_path / "calibrated.fits"
    killed = _writer(out)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    left = _temporaries(out)
    assert len(left) == 1 and left[0].read_bytes() == b"half a file" and not out.exists()
    live = _writer(out)  # a writer still at work keeps its file
    try:
        other_host = out.parent / f".{out.name}.elsewhere.4242.0123abcd.fits"
        other_host.write_bytes(b"")
        assert main(["calibrate", str(stage_inputs["raw171"]), str(out),
                     "--calibration-dir", str(stage_inputs["cal"])]) == 0
        assert read_fits(out)[0].shape == (128, 128)
        remaining = _temporaries(out)
        assert left[0] not in remaining and other_host in remaining and len(remaining) == 2
        # another host's writer cannot be asked: its file goes once it is an hour old
        old = time.time() - 2 * 3600
        os.utime(other_host, (old, old))
        assert remove_stale_temporaries(out) == [other_host]
        assert len(_temporaries(out)) == 1  # the live writer's
    finally:
        live.kill()
        live.wait()
