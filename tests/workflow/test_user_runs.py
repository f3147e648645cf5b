"""The workflow run as users run it: training killed and resumed through Snakemake, config
mistakes caught while planning, no config value unquoted in a shell line, readable training logs.

The training tests run only the train rule (`--allowed-rules train`) on a workspace whose
manifest and pairs already exist (`train_workspace`): a tiny model, 64-pixel images, CPU.
"""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers.model import write_manifest
from helpers.workflow import (DEMO_CONFIG, MODEL_DIR, REAL_CONFIG, REPO, TINY_MODEL,
                              TINY_TRAINING, TRAIN_LOG, checkout_copy, job_counts,
                              run_in_checkout, run_snakemake, snakemake_command, snakemake_env,
                              train_args, train_workspace, write_config)

from farside_gan.config.training import WORKFLOW_KEYS

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
def checkpoint_step(workdir: Path) -> int | None:
    import torch
    path = workdir / MODEL_DIR / "checkpoints/latest.pt"
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except (FileNotFoundError, EOFError, RuntimeError):
        return None  # not written yet


def wait_for_checkpoint(workdir: Path, proc: subprocess.Popen, step: int,
                        timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"snakemake ended before step {step}:\n{proc.communicate()}"
        current = checkpoint_step(workdir)
        if current is not None and current >= step:
            return current
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint at step {step} within {timeout} s")


def descendants(pid: int) -> list[int]:
    """The processes started (directly or not) by ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def train_process(snakemake_pid: int) -> int:
    for pid in descendants(snakemake_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:4] == [b"python", b"-m", b"farside_gan", b"train"]:
            return pid
    raise AssertionError("no `python -m farside_gan train` process under snakemake")


def start_train(workdir: Path, config: Path, *extra) -> subprocess.Popen:
    """Snakemake running the train rule, in a process group of its own (as in a terminal)."""
    return subprocess.Popen(snakemake_command(workdir, *train_args(*extra), configfiles=[config]),
                            cwd=workdir, env=snakemake_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def logged_step(workdir: Path) -> int:
    """The last step in the run's own loss log (one row a step): how far training got."""
    with open(workdir / MODEL_DIR / "checkpoints/losses.csv", newline="") as fh:
        return int(list(csv.DictReader(fh))[-1]["step"])


def generator_weights(workdir: Path) -> dict:
    import torch
    return torch.load(workdir / MODEL_DIR / "generator.pt", map_location="cpu",
                      weights_only=True)["G"]


def loss_rows(workdir: Path) -> list[dict]:
    with open(workdir / MODEL_DIR / "losses.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    run_snakemake(workdir, *train_args(), configfiles=[train_workspace(workdir)])
    return workdir


def assert_same_training(workdir: Path, reference: Path) -> None:
    import torch
    got, expected = generator_weights(workdir), generator_weights(reference)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    rows = loss_rows(workdir)
    assert rows == loss_rows(reference)
    assert [int(r["step"]) for r in rows] == list(range(1, TINY_TRAINING["max_steps"] + 1))


@pytest.mark.slow
def test_training_interrupted_with_ctrl_c_resumes_on_the_next_run(tmp_path, uninterrupted):
    config = train_workspace(tmp_path)
    proc = start_train(tmp_path, config)
    wait_for_checkpoint(tmp_path, proc, 10)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: SIGINT to snakemake and its jobs
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output
    killed_at, reached = checkpoint_step(tmp_path), logged_step(tmp_path)
    # the job was stopped mid-run: its outputs are gone, its checkpoint is not
    assert 10 <= killed_at <= reached < TINY_TRAINING["max_steps"], output
    assert not (tmp_path / MODEL_DIR / "generator.pt").exists()

    run_snakemake(tmp_path, *train_args(), configfiles=[config])
    log = (tmp_path / TRAIN_LOG).read_text()
    assert f"resuming from {MODEL_DIR}/checkpoints/latest.pt at step {killed_at} " in log, log
    assert_same_training(tmp_path, uninterrupted)
    assert "\r" not in log  # progress lines, not a bar, in the rule's log file
    print(f"Ctrl-C after step {reached}, checkpoint at step {killed_at}; the rerun resumed "
          f"at step {killed_at}")


@pytest.mark.slow
def test_training_killed_in_its_job_resumes_on_snakemakes_retry(tmp_path, uninterrupted):
    """SIGKILL to the training process (as the OOM killer or a SLURM time limit would end it);
    Snakemake retries the job (as the SLURM profile does) and the retry resumes."""
    config = train_workspace(tmp_path)
    proc = start_train(tmp_path, config, "--retries", "1")
    wait_for_checkpoint(tmp_path, proc, 10)
    os.kill(train_process(proc.pid), signal.SIGKILL)
    time.sleep(0.5)  # let the kernel reap it before reading how far it got
    killed_at, reached = checkpoint_step(tmp_path), logged_step(tmp_path)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert "Trying to restart job" in output or "attempt 2" in output.lower(), output
    log = (tmp_path / TRAIN_LOG).read_text()
    assert f"resuming from {MODEL_DIR}/checkpoints/latest.pt at step {killed_at} " in log, log
    assert_same_training(tmp_path, uninterrupted)
    print(f"SIGKILL to the train process after step {reached}, checkpoint at step {killed_at}; "
          f"the retry resumed at step {killed_at}")


def test_training_log_file_has_lines_not_a_progress_bar(tmp_path):
    """stderr to a file, as the train rule's `> {log} 2>&1`: progress lines, no \\r-redrawn bar."""
    import sys
    manifest = write_manifest(tmp_path, n_train=4, n_eval=0, n=64)
    settings = {**TINY_MODEL, **TINY_TRAINING, "max_steps": 6, "progress_seconds": 0}
    settings = {k: v for k, v in settings.items() if k not in WORKFLOW_KEYS}
    log = tmp_path / "train.log"
    with open(log, "w") as fh:
        subprocess.run([sys.executable, "-m", "farside_gan", "train", "--manifest", str(manifest),
                        "--out-dir", str(tmp_path / "model"), "--device", "cpu"]
                       + [a for k, v in settings.items() for a in ("--set", f"{k}={v}")],
                       stdout=fh, stderr=subprocess.STDOUT, env=snakemake_env(), check=True)
    text = log.read_text()
    assert "\r" not in text
    progress = [line for line in text.splitlines() if ": train: step " in line]
    # progress_seconds 0: a line after every step
    assert [int(line.split(": train: step ")[1].split("/")[0]) for line in progress] == \
        [1, 2, 3, 4, 5, 6]
    assert progress[-1].split(": train: ")[1].startswith("step 6/6 (100%), epoch 1, ")
    assert "loss_G " in progress[-1]
    assert all(len(line) < 300 for line in text.splitlines())


def test_progress_is_a_bar_on_a_terminal():
    import pty

    from farside_gan.core.progress import StepProgress
    leader, follower = pty.openpty()
    with open(follower, "w") as terminal, open(os.devnull, "w") as file:
        assert StepProgress(3, stream=terminal).bar is not None
        on_file = StepProgress(3, stream=file)
        assert on_file.bar is None and on_file.lines
    os.close(leader)


# ---------------------------------------------------------------- config: the model/training keys

def schema_sections() -> tuple[dict, dict]:
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    return schema["model"], schema["training"]


def test_schema_describes_exactly_the_train_config_fields():
    """One list of settings: TrainConfig's. The schema says each one's type, bounds, default and
    meaning; WORKFLOW_KEYS (device, gpus, nodes) are the workflow's own (the Gauss scale is
    not a setting: it comes with the data, NORMCLIP)."""
    import dataclasses

    from farside_gan.config.training import LOADERS, PRECISIONS, TrainConfig
    from farside_gan.model.networks import NORMS, PADDINGS

    model, training = schema_sections()
    assert model["additionalProperties"] is False and training["additionalProperties"] is False
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert set(model["properties"]) == set(TrainConfig.MODEL_FIELDS)
    assert set(training["properties"]) == \
        set(fields) - set(TrainConfig.MODEL_FIELDS) | set(WORKFLOW_KEYS)
    types = {int: "integer", float: "number", bool: "boolean"}
    for name, spec in {**model["properties"], **training["properties"]}.items():
        assert spec.get("description"), name
        if name in WORKFLOW_KEYS:
            continue
        default = fields[name].default
        assert spec["default"] == default and type(spec["default"]) is type(default), name
        if isinstance(default, str):
            assert default in spec["enum"], name
        else:
            assert spec["type"] == types[type(default)], name
    enums = {"norm": NORMS, "padding": PADDINGS, "loader": LOADERS, "mixed_precision": PRECISIONS}
    for name, values in enums.items():
        spec = model["properties"].get(name) or training["properties"][name]
        assert set(spec["enum"]) == set(values), name


def validate_config(config: dict) -> dict:
    import copy

    from snakemake.utils import validate
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))
    return config


BASE = {"start": "2011-01-01T00:00", "end": "2011-01-01T00:00"}


@pytest.mark.parametrize("section, value, words", [
    ("training", {"epoch": 3}, ["'epoch' was unexpected", "['training']"]),
    ("model", {"n_residuals": 9}, ["'n_residuals' was unexpected", "['model']"]),
    ("model", {"ngf": 0}, ["less than the minimum of 1", "['ngf']"]),
    ("training", {"lr": "2e-4"}, ["'2e-4' is not of type 'number'", "['lr']"]),
    ("training", {"mixed_precision": "fp16"}, ["'fp16' is not one of", "['mixed_precision']"]),
    ("training", {"compile": "yes"}, ["'yes' is not of type 'boolean'", "['compile']"]),
])
def test_schema_rejects_model_and_training_mistakes_naming_them(section, value, words):
    from snakemake.exceptions import WorkflowError
    with pytest.raises(WorkflowError) as info:
        validate_config({**BASE, section: value})
    for word in words:
        assert word in str(info.value)


INJECTION = "x; touch INJECTED; exit 1 #"


def text_settings() -> list[tuple[str, str]]:
    """(section, key) of every setting whose value is text."""
    import dataclasses

    from farside_gan.config.training import TrainConfig
    return [("model" if f.name in TrainConfig.MODEL_FIELDS else "training", f.name)
            for f in dataclasses.fields(TrainConfig) if isinstance(f.default, str)] \
        + [("training", "device")]


@pytest.mark.parametrize("section, key", text_settings())
def test_text_settings_cannot_carry_shell_code(section, key):
    from snakemake.exceptions import WorkflowError
    with pytest.raises(WorkflowError, match=f"is not one of[\\s\\S]*\\['{key}'\\]"):
        validate_config({**BASE, section: {key: INJECTION}})


@pytest.mark.parametrize("training, words", [
    ({"epoch": 3}, ["'epoch' was unexpected"]),
    ({"loader": INJECTION}, ["is not one of", "training.loader"]),
    # what the schema cannot say; TrainConfig says it while planning
    ({"epochs": 50, "epoch_decay": 100}, ["config: model/training: epoch_decay (100) exceeds "
                                           "epochs (50)"]),
])
def test_config_mistakes_stop_the_run_before_the_train_job_deletes_anything(tmp_path, training,
                                                                            words):
    """A forced rerun of train (as after a changed setting) with a mistaken setting: planning
    fails naming it; the finished run's outputs and its checkpoint are as they were."""
    config = train_workspace(tmp_path, training)
    kept = {}
    for name in ("generator.pt", "losses.csv", "checkpoints/latest.pt"):
        path = tmp_path / MODEL_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
        kept[path] = path.read_bytes()
    proc = run_snakemake(tmp_path, *train_args("--forcerun", "train"), configfiles=[config],
                         check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in output, output
    assert {path: path.read_bytes() for path in kept} == kept
    assert not (tmp_path / TRAIN_LOG).exists() and not (tmp_path / "INJECTED").exists()


def test_train_shell_line_passes_each_setting_as_one_quoted_word(tmp_path):
    """The dry run's train command, split as the shell splits it: exactly one `--set key=value`
    per setting, with the config's values, and one `--expect key=value` per frame convention
    of image: and normalize: (which the data must have)."""
    config = train_workspace(tmp_path, {"augment_translate_px": 1.5, "loader": "workers"})
    proc = run_snakemake(tmp_path, "-n", "--printshellcmds", *train_args(), configfiles=[config])
    [line] = [l for l in (proc.stdout + proc.stderr).splitlines() if " farside_gan train " in l]
    words = shlex.split(line.split("python ", 1)[1].split(" > ", 1)[0])
    settings = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--set")
    assert words.count("--set") == len(settings)
    expected = validate_config(yaml.safe_load(config.read_text()))
    for section in ("model", "training"):
        for key, value in expected[section].items():
            if key not in WORKFLOW_KEYS:
                assert settings.pop(key) == (str(value).lower() if isinstance(value, bool)
                                             else str(value)), key
    assert settings == {}
    conventions = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--expect")
    image, normalize = expected["image"], expected["normalize"]
    assert conventions == {"size": str(image["size"]), "rsun_px": str(image["rsun_px"]),
                           "mask_radius": str(image["mask_radius"]),
                           "euv_median": str(normalize["euv_median"]),
                           "euv_clip": ",".join(map(str, normalize["euv_clip"])),
                           "hmi_clip": str(normalize["hmi_clip"])}


# ---------------------------------------------------------------- the default configuration

def test_demo_config_names_every_key_where_it_differs_from_the_default():
    """Snakemake merges --configfile files over the Snakefile's default (config/config.yaml)
    when that exists (run from the repository's root), and takes them alone otherwise (tests'
    --directory): the demo must be the same configuration both ways."""
    import copy

    from snakemake.utils import update_config
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    merged = copy.deepcopy(yaml.safe_load(REAL_CONFIG.read_text()))
    update_config(merged, copy.deepcopy(demo))
    assert validate_config(merged) == validate_config(demo)


def test_plain_snakemake_plans_the_default_configuration(tmp_path):
    proc = run_in_checkout(checkout_copy(tmp_path), ["-n", "--quiet", "rules"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    counts = job_counts(output)
    # the real 2011-2017 run (config/config.yaml): monthly fetches, no synthetic archive
    assert counts["fetch"] > 200 and counts["train"] == 1 and "synth_archive" not in counts
    # its JSOC fetches have no e-mail address yet: a dry run says so and plans anyway
    assert "fetch.jsoc_email is empty" in output


def test_use_conda_without_conda_says_what_is_missing(tmp_path):
    """`snakemake --cores 8 --use-conda`, as users type it (dry run here: no downloads)."""
    import shutil
    proc = run_in_checkout(checkout_copy(tmp_path), ["--cores", "8", "--use-conda", "-n"])
    output = proc.stdout + proc.stderr
    if shutil.which("conda", path=snakemake_env()["PATH"]):
        assert proc.returncode == 0, output
    else:
        assert proc.returncode != 0
        assert "--use-conda (--sdm conda) needs the `conda` command" in output, output
        assert "pip install -e '.[workflow]'" in output


def test_jsoc_fetch_without_email_stops_before_anything_runs(tmp_path):
    config = write_config(tmp_path / "config.yaml", {
        "start": "2011-01-01T00:00", "end": "2011-01-01T12:00", "fetch": {"source": "jsoc"}})
    # a dry run plans the JSOC fetches
    dry = run_snakemake(tmp_path, "-n", "--quiet", "rules", configfiles=[config])
    assert job_counts(dry.stdout + dry.stderr)["fetch"] == 2  # AIA and HMI, January 2011
    proc = run_snakemake(tmp_path, "--cores", "1", configfiles=[config], check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "fetch.jsoc_email is empty, but 2 fetch job(s) download from JSOC (aia/201101, " \
        "hmi/201101; fetch.source: jsoc)" in output, output
    assert "Nothing was fetched." in output
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()


# ---------------------------------------------------------------- the README's commands

def readme_commands(kind: str) -> list[str]:
    """The README's `kind` commands (snakemake, printf): lines of its code blocks, then inline
    code, in the README's order."""
    import re
    text = (REPO / "README.md").read_text()
    commands = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
                for line in block.splitlines() if line.startswith(kind + " ")]
    commands += re.findall(rf"`({kind} [^`]+)`", text)
    return list(dict.fromkeys(commands))


@pytest.fixture(scope="module")
def readme_checkout(tmp_path_factory) -> Path:
    """A clone-like directory where the README's printf lines (the files its commands name,
    e.g. site.yaml) have run."""
    checkout = checkout_copy(tmp_path_factory.mktemp("readme"))
    for command in readme_commands("printf"):
        subprocess.run(["bash", "-c", command], cwd=checkout, check=True)
    return checkout


def test_readme_shows_the_commands_a_user_runs():
    commands = readme_commands("snakemake")
    assert "snakemake --cores 2 --configfile config/demo.yaml" in commands  # the quick start
    assert any("--profile workflow/profiles/slurm" in c for c in commands)
    assert any(" results/farside/" in c for c in commands)  # a target
    assert readme_commands("printf")


def test_readme_front_door_is_two_commands_and_ci_runs_its_test_command():
    quick_start = [shlex.split(c, comments=True) for c in readme_commands("./run")][:2]
    assert quick_start == [["./run", "demo"], ["./run", "tests"]]
    ci = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert ci[-1] == "./run tests"


def test_run_script_uses_an_environment_that_has_everything(tmp_path):
    """`./run tests ARGS` passes ARGS to pytest, in the environment FARSIDE_GAN_VENV names,
    installing nothing when it already has everything (this interpreter's), with that
    environment first on PATH: the workflow's rules run `python -m farside_gan` (here no other
    `python` is on PATH)."""
    env = {**os.environ, "PATH": "/usr/bin:/bin", "FARSIDE_GAN_VENV": sys.prefix}
    proc = subprocess.run([str(REPO / "run"), "tests", "--collect-only", "-q",
                           "tests/architecture/test_cli_help.py"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "setting up" not in proc.stderr and "pip" not in proc.stdout + proc.stderr
    import re
    # -q twice: counts
    assert re.search(r"^tests/architecture/test_cli_help.py: \d+$", proc.stdout, re.M)
    usage = subprocess.run([str(REPO / "run")], capture_output=True, text=True)
    assert usage.returncode == 2 and "./run demo" in usage.stderr


@pytest.mark.parametrize("command", readme_commands("snakemake"))
def test_readme_command_runs_as_written(readme_checkout, command):
    """Each `snakemake` command of the README, as written but as a dry run (`-n` added: they
    fetch, or take minutes)."""
    import shutil
    argv = shlex.split(command, comments=True)[1:]
    if not {"-n", "--dry-run", "--dryrun"} & set(argv):
        argv = ["-n", *argv]
    proc = run_in_checkout(readme_checkout, argv)
    output = proc.stdout + proc.stderr
    if "--use-conda" in argv and not shutil.which("conda", path=snakemake_env()["PATH"]):
        assert "--use-conda (--sdm conda) needs the `conda` command" in output, output
    elif "--report" in argv:  # a report needs a finished run: this one got as far as that
        assert "marked for report but does not exist" in output, output
    else:
        assert proc.returncode == 0, output
        assert "This was a dry-run" in output, output
