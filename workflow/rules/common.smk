# Shared helpers: the observation-time grids, file naming, and reading fetch records.

import json
from datetime import datetime, timedelta
from pathlib import Path

# Rules run the library as `python -m farside_gan ...` with the repository on PYTHONPATH, so the
# same shell lines work in the project's virtualenv and in the conda envs of envs/ (which hold
# the dependencies; the package itself is this checkout).
REPO = Path(workflow.basedir).parent
FARSIDE_GAN = "python -m farside_gan"
# (braces doubled: Snakemake formats the prefix like the shell line)
shell.prefix(f'export PYTHONPATH="{REPO}${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; ')

TIME_FORMAT = "%Y%m%dT%H%M"  # time wildcard: compact and sortable, e.g. 20110101T0000
CHANNELS = {
    "aia": ["304", "193", "171"],
    "hmi": ["magnetogram"],
    "euvi_a": ["304", "195", "171"],
    "euvi_b": ["304", "195", "171"],
}
SPACECRAFT = {"stereo_a": "euvi_a", "stereo_b": "euvi_b"}  # results/farside/<spacecraft>/


wildcard_constraints:
    instrument="aia|hmi|euvi_a|euvi_b",
    channel="[0-9]+|magnetogram",
    time=r"\d{8}T\d{4}",
    spacecraft="stereo_a|stereo_b",
    period=r"\d{6}|\d{8}|\d{8}T\d{4}",


def _parse_time(text):
    return datetime.fromisoformat(text)


def time_grid(start, end, hours):
    """Observation times from start to end inclusive, every `hours`, as time wildcards."""
    t, stop, step = _parse_time(start), _parse_time(end), timedelta(hours=hours)
    if stop < t:
        raise WorkflowError(f"config: end {end} is before start {start}")
    times = []
    while t <= stop:
        times.append(t.strftime(TIME_FORMAT))
        t += step
    return times


def iso(time):
    """Time wildcard -> ISO string for the command line."""
    return datetime.strptime(time, TIME_FORMAT).strftime("%Y-%m-%dT%H:%M")


TRAIN_TIMES = time_grid(config["start"], config["end"], config["cadence_hours"])
FARSIDE_TIMES = {
    sc: time_grid(rng["start"], rng["end"], config["farside"]["cadence_hours"])
    for sc, rng in ((sc, config["farside"]["spacecraft"].get(SPACECRAFT[sc]))
                    for sc in SPACECRAFT)
    if rng
}
# The GPU count that training asks for; 0 in CPU runs (the demo).
GPUS = 0 if config["training"]["device"] == "cpu" else config["training"]["gpus"]


# Downloads run in batches (one fetch job per instrument and period: a month, a day or a single
# time), because Snakemake spends ~5 ms per job: 32,000 one-frame fetch jobs for 2011-2017 take
# minutes to plan, ~300 monthly ones a few seconds. Later stages stay one job per observation.
PERIOD_LENGTH = {"month": 6, "day": 8, "time": 13}[config["fetch"]["batch"]]


def period_of(time):
    return time[:PERIOD_LENGTH]


def instrument_times(instrument):
    if instrument in ("aia", "hmi"):
        return TRAIN_TIMES
    sc = {v: k for k, v in SPACECRAFT.items()}[instrument]
    return FARSIDE_TIMES.get(sc, [])


def times_in(instrument, period):
    return [t for t in instrument_times(instrument) if period_of(t) == period]


def periods(instrument):
    return sorted({period_of(t) for t in instrument_times(instrument)})


def fetch_dir(instrument, period):
    return f"data/raw/{instrument}/{period}"


def frame_dir(instrument, channel, time):
    """Where fetch puts one observation: record.json, and frame.fits when it is usable."""
    return f"{fetch_dir(instrument, period_of(time))}/{channel}/{time}"


def fetch_dirs(instruments):
    return [fetch_dir(i, p) for i in instruments for p in periods(i)]


def training_record_dirs():
    return fetch_dirs(["aia", "hmi"])


def farside_record_dirs():
    return fetch_dirs([SPACECRAFT[sc] for sc in FARSIDE_TIMES])


def training_records():
    """Every training frame's record.json (written by fetch whether the frame is usable or not)."""
    return [f"{frame_dir(i, ch, t)}/record.json"
            for i in ("aia", "hmi") for t in TRAIN_TIMES for ch in CHANNELS[i]]


def fetched_ok(instrument, time):
    """True when every channel of `instrument` at `time` was fetched and passed quality checks.

    Reads the fetch checkpoint's record.json; raises IncompleteCheckpointException (Snakemake
    re-evaluates the asking job once the fetch has run) while it has not.
    """
    checkpoints.fetch.get(instrument=instrument, period=period_of(time))
    for channel in CHANNELS[instrument]:
        with open(Path(frame_dir(instrument, channel, time)) / "record.json") as f:
            if json.load(f).get("status") != "ok":
                return False
    return True


def farside_maps(wildcards):
    """Farside magnetograms for every farside time whose three EUVI channels are usable."""
    return [
        f"results/farside/{sc}/{t}.fits"
        for sc, times in FARSIDE_TIMES.items()
        for t in times
        if fetched_ok(SPACECRAFT[sc], t)
    ]


def training_pairs(wildcards):
    """AIA stacks and HMI targets of the times where all four frames are usable."""
    ok = [t for t in TRAIN_TIMES if fetched_ok("aia", t) and fetched_ok("hmi", t)]
    return {
        "stacks": [f"data/stacks/aia/{t}.fits" for t in ok],
        "targets": [f"data/normalized/hmi/magnetogram/{t}.fits" for t in ok],
    }


def eval_times(wildcards):
    """Times of the manifest's evaluation split (rows with status ok and split eval)."""
    import csv

    manifest = checkpoints.manifest.get().output[0]
    with open(manifest, newline="") as f:
        # the stack's file name carries the grid time (the row's time is the observation's)
        return sorted(
            Path(row["input"]).stem for row in csv.DictReader(f)
            if row["status"] == "ok" and row["split"] == "eval"
        )


WORKFLOW_ONLY_KEYS = {"device", "gpus"}  # read by the rules, not by farside-gan train


def train_settings():
    """`--set key=value` for every key of the config's model: and training: sections."""
    args = []
    for section in ("model", "training"):
        for key, value in config[section].items():
            if key in WORKFLOW_ONLY_KEYS:
                continue
            if isinstance(value, bool):
                value = str(value).lower()
            args.append(f"--set {key}={value}")
    return " ".join(args)


def archive_input(wildcards):
    """The demo's synthetic archive must exist before anything is fetched from it."""
    return rules.synth_archive.output if config["synthetic"]["enabled"] else []


def fetch_source(instrument):
    """The fetch command's --source: jsoc, fido, or the archive directory/URL (local/http)."""
    source = config["fetch"]["euvi_source" if instrument.startswith("euvi") else "source"]
    if source in ("local", "http"):
        if not config["fetch"]["archive"]:
            raise WorkflowError(f"config: fetch.archive must name the archive for source {source}")
        return config["fetch"]["archive"]
    return source


def fetch_extra_args(instrument):
    args = []
    if fetch_source(instrument) == "jsoc" and config["fetch"]["jsoc_email"]:
        args += ["--jsoc-email", config["fetch"]["jsoc_email"]]
    for period in config["fetch"]["eclipse_periods"]:
        args += ["--eclipse-period", period]
    return args


def fetch_commands(wildcards, input, output):
    """One `farside-gan fetch` per channel and time of the batch."""
    inst = wildcards.instrument
    return [
        ["fetch", "--source", fetch_source(inst), "--instrument", inst, "--channel", ch,
         "--time", iso(t), "--tolerance", config["fetch"]["tolerance"],
         "--out-dir", f"{output[0]}/{ch}/{t}"]
        + fetch_extra_args(inst)
        for t in times_in(inst, wildcards.period)
        for ch in CHANNELS[inst]
    ]


def synthetic_span():
    """Earliest and latest time any stage asks for, so the synthetic archive covers them all."""
    times = TRAIN_TIMES + [t for ts in FARSIDE_TIMES.values() for t in ts]
    return iso(min(times)), iso(max(times))


if "jsoc" in (config["fetch"]["source"], config["fetch"]["euvi_source"]) \
        and not config["fetch"]["jsoc_email"]:
    logger.warning(
        "config: fetch.jsoc_email is empty, but JSOC exports need a registered address "
        "(http://jsoc.stanford.edu/ajax/register_email.html); set it before running for real, "
        "e.g. in a site.yaml given after the config: --configfile config/config.yaml site.yaml")


def manifest_commands(wildcards, input, output):
    return [
        ["manifest", "--out", output[0]]
        + ["--records"] + training_records()
        + ["--stacks"] + list(getattr(input, "stacks", []))
        + ["--targets"] + list(getattr(input, "targets", []))
        + ["--pair-tolerance", config["dataset"]["pair_tolerance"],
           "--seed", config["dataset"]["seed"],
           "--eval-months", config["dataset"]["eval_months"]]
    ]


def train_launcher(wildcards, resources):
    # Several GPUs of one host: one process per GPU, their rendezvous on 127.0.0.1
    # (torchrun --standalone's stores listen on every interface; farside_gan/distributed.py).
    if resources.gpu > 1:
        return f"python -m farside_gan.distributed --nproc-per-node={int(resources.gpu)}"
    return FARSIDE_GAN
