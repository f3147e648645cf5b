# Shared helpers: the observation-time grids, the periods that batch them, and file naming.
#
# The unit of work is the *period* (fetch.batch: a month, a day or a single time): one fetch,
# one prepare, one farside inference and one quicklook job per instrument and period. The DAG is
# known up front (no checkpoints): a job that finds a frame unusable records why and goes on,
# and the later jobs of its period read those records. The 2011-2017 run is ~1,000 jobs.

import sys
from datetime import datetime, timedelta
from pathlib import Path

# Rules run the library as `python -m farside_gan ...` with the repository on PYTHONPATH, so the
# same shell lines work in the project's virtualenv and in the conda envs of envs/ (which hold
# the dependencies; the package itself is this checkout).
REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO))  # the library's conventions, read here and by every job
from farside_gan.dataset import split_months  # noqa: E402
from farside_gan.layout import CHANNELS, OBSERVERS, TIME_KEY_FORMAT  # noqa: E402
from farside_gan.train_config import WORKFLOW_KEYS  # noqa: E402

FARSIDE_GAN = "python -m farside_gan"
# (braces doubled: Snakemake formats the prefix like the shell line)
shell.prefix(f'export PYTHONPATH="{REPO}${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; ')

SPACECRAFT = {OBSERVERS[i]: i for i in ("euvi_a", "euvi_b")}  # results/farside/<spacecraft>/
INSTRUMENT_OF_OBSERVER = {observer: i for i, observer in OBSERVERS.items()}


wildcard_constraints:
    instrument="aia|hmi|euvi_a|euvi_b",
    spacecraft="stereo_a|stereo_b",
    observer="sdo|stereo_a|stereo_b",
    period=r"\d{6}|\d{8}|\d{8}T\d{4}",


def time_grid(start, end, hours):
    """Observation times from start to end inclusive, every `hours`, as time keys."""
    t, stop, step = datetime.fromisoformat(start), datetime.fromisoformat(end), timedelta(hours=hours)
    if stop < t:
        raise WorkflowError(f"config: end {end} is before start {start}")
    times = []
    while t <= stop:
        times.append(t.strftime(TIME_KEY_FORMAT))
        t += step
    return times


def iso(time):
    """Time key -> ISO string for the command line."""
    return datetime.strptime(time, TIME_KEY_FORMAT).strftime("%Y-%m-%dT%H:%M")


TRAIN_TIMES = time_grid(config["start"], config["end"], config["cadence_hours"])
FARSIDE_TIMES = {
    sc: time_grid(rng["start"], rng["end"], config["farside"]["cadence_hours"])
    for sc, rng in ((sc, config["farside"]["spacecraft"].get(SPACECRAFT[sc]))
                    for sc in SPACECRAFT)
    if rng
}
SYNTHETIC = config["synthetic"]["enabled"]
# The GPUs per host that training asks for (0 in CPU runs: the demo), and its hosts.
GPUS = 0 if config["training"]["device"] == "cpu" else config["training"]["gpus"]
NODES = config["training"]["nodes"]


# Batches: Snakemake spends ~20 ms per job planning the DAG and every job pays ~3 s of imports,
# so one job per instrument and period (~300 per stage for 2011-2017 by month), not per frame.
PERIOD_LENGTH = {"month": 6, "day": 8, "time": 13}[config["fetch"]["batch"]]


def period_of(time):
    return time[:PERIOD_LENGTH]


def instrument_times(instrument):
    if instrument in ("aia", "hmi"):
        return TRAIN_TIMES
    return FARSIDE_TIMES.get(OBSERVERS[instrument], [])


def times_in(instrument, period):
    return [t for t in instrument_times(instrument) if period_of(t) == period]


def periods(instrument):
    return sorted({period_of(t) for t in instrument_times(instrument)})


# The evaluation split is by month (dataset.split_months: seeded per year), so the near-side
# periods to predict are known before any data is: those in an evaluation month.
_EVAL_MONTHS = split_months({int(t[:4]) for t in TRAIN_TIMES}, config["dataset"]["seed"],
                            config["dataset"]["eval_months"])
EVAL_PERIODS = [p for p in periods("aia") if int(p[4:6]) in _EVAL_MONTHS.get(int(p[:4]), ())]


def fetch_index(instrument, period):
    return f"data/raw/{instrument}/{period}/records.json"


def prepared_dir(instrument, period):
    return f"data/prepared/{instrument}/{period}"


def prepared_dirs(instrument):
    return [prepared_dir(instrument, p) for p in periods(instrument)]


def farside_map_dirs():
    return [f"results/farside/{sc}/{p}" for sc in FARSIDE_TIMES for p in periods(SPACECRAFT[sc])]


def quicklook_dirs():
    return [d.replace("results/farside/", "results/quicklook/", 1) for d in farside_map_dirs()]


def archive_input(wildcards):
    """The demo's synthetic archive must exist before anything is fetched from it."""
    return rules.synth_archive.output if SYNTHETIC else []


def fetch_source(instrument):
    """The fetch command's --source: jsoc, fido, or the archive directory/URL (local/http)."""
    source = config["fetch"]["euvi_source" if instrument.startswith("euvi") else "source"]
    if source in ("local", "http"):
        if not config["fetch"]["archive"]:
            raise WorkflowError(f"config: fetch.archive must name the archive for source {source}")
        return config["fetch"]["archive"]
    return source


def fetch_request(wildcards):
    """Everything a period's fetch depends on (times, source, tolerance, eclipse periods)."""
    inst, fetch = wildcards.instrument, config["fetch"]
    return {"times": times_in(inst, wildcards.period), "source": fetch_source(inst),
            "tolerance": fetch["tolerance"], "eclipse_periods": fetch["eclipse_periods"],
            "jsoc_url": fetch["jsoc_url"]}


def fetch_commands(wildcards, input, output):
    """One `farside-gan fetch-period` for every channel and time of the period: frames (kept
    when already fetched and verified) and the period's index, written last."""
    inst, fetch = wildcards.instrument, config["fetch"]
    source = fetch_source(inst)
    command = ["fetch-period", "--source", source, "--instrument", inst,
               "--times", *[iso(t) for t in times_in(inst, wildcards.period)],
               "--tolerance", fetch["tolerance"], "--out-dir", str(Path(output[0]).parent),
               "--index", output[0], "--connections", fetch["connections"],
               "--file-deadline", fetch["file_deadline"], "--retries", fetch["retries"]]
    if source in ("jsoc", "fido") and fetch["jsoc_email"]:
        command += ["--jsoc-email", fetch["jsoc_email"]]
    if source == "jsoc" and fetch["jsoc_url"]:
        command += ["--jsoc-url", fetch["jsoc_url"]]
    for period in fetch["eclipse_periods"]:
        command += ["--eclipse-period", period]
    return [command]


def synthetic_archive_spec():
    """The synthetic archive holds each instrument at the times the workflow fetches (AIA and HMI
    at the training times, each STEREO at its farside times) and nothing else:
    [(instruments, start, end, cadence hours)]."""
    groups = [("aia,hmi", config["start"], config["end"], config["cadence_hours"])]
    groups += [(SPACECRAFT[sc], config["farside"]["spacecraft"][SPACECRAFT[sc]]["start"],
                config["farside"]["spacecraft"][SPACECRAFT[sc]]["end"],
                config["farside"]["cadence_hours"]) for sc in FARSIDE_TIMES]
    return {"groups": groups, **config["synthetic"]}


def synthetic_archive_commands(wildcards, output, threads):
    spec = synthetic_archive_spec()
    return [["synth-archive", output[0], "--instruments", instruments, "--start", start,
             "--end", end, "--cadence", f"{hours}h", "--size", spec["size"],
             "--euvi-size", spec["euvi_size"], "--seed", spec["seed"], "--workers", threads]
            for instruments, start, end, hours in spec["groups"]]


if "jsoc" in (config["fetch"]["source"], config["fetch"]["euvi_source"]) \
        and not config["fetch"]["jsoc_email"]:
    logger.warning(
        "config: fetch.jsoc_email is empty, but JSOC exports need a registered address "
        "(http://jsoc.stanford.edu/ajax/register_email.html); set it before running for real, "
        "e.g. in a site.yaml given after the config: --configfile config/config.yaml site.yaml")


def manifest_commands(wildcards, input, output):
    return [
        ["manifest", "--out", output[0], "--prepared", *input.prepared,
         "--pair-tolerance", config["dataset"]["pair_tolerance"],
         "--seed", config["dataset"]["seed"], "--eval-months", config["dataset"]["eval_months"]]
    ]


# What evaluate scores: the near side against HMI (always) and, for a synthetic archive, near and
# far side against the synthetic Sun's own field (real data has no farside truth).
def comparisons():
    """[(label, prediction dir, truth dir, the rule output holding the truth dir)]."""
    out = []
    for p in EVAL_PERIODS:
        hmi = prepared_dir("hmi", p)
        out.append(("nearside/sdo/hmi", f"results/nearside/{p}",
                    str(Path(hmi, "aligned", "magnetogram")), hmi))
    if SYNTHETIC:
        out += [("nearside/sdo/synthetic", f"results/nearside/{p}", f"results/truth/sdo/{p}",
                 f"results/truth/sdo/{p}") for p in EVAL_PERIODS]
        for d in farside_map_dirs():
            truth = d.replace("results/farside/", "results/truth/", 1)
            out.append((f"farside/{d.split('/')[2]}/synthetic", d, truth, truth))
    return out


def evaluate_inputs(wildcards):
    """Every prediction directory and truth holder evaluate reads."""
    return sorted({path for _, predictions, _, holder in comparisons()
                   for path in (predictions, holder)})


def evaluate_commands(wildcards, input, output):
    command = ["evaluate", "--out-dir", str(Path(output.metrics).parent)]
    for label, predictions, truth, _ in comparisons():
        command += ["--comparison", label, predictions, truth]
    return [command]


def prepare_inputs(wildcards):
    inputs = {"index": fetch_index(wildcards.instrument, wildcards.period)}
    if wildcards.instrument == "aia":  # pointing and degradation tables
        inputs["calibration"] = "data/calibration"
    return inputs


def train_config_values():
    """What `farside-gan train` is given: the model: and training: keys but the workflow's own,
    and the Gauss of a normalized HMI value of 1 from normalize: (one place for it)."""
    values = {k: v for section in ("model", "training") for k, v in config[section].items()
              if k not in WORKFLOW_KEYS}
    values["hmi_clip"] = config["normalize"]["hmi_clip"]
    return values


def check_train_config():
    """Fail while planning on what the schema cannot say (e.g. epoch_decay above epochs)."""
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # this checkout's farside_gan (train_config needs no torch)
    from farside_gan.train_config import TrainConfig

    try:
        TrainConfig.from_dict(train_config_values())
    except (TypeError, ValueError) as exc:
        raise WorkflowError(f"config: model/training: {exc}") from exc


check_train_config()


def train_settings():
    """`--set key=value` for each of train_config_values(), quoted for the shell (the schema
    leaves no free text there, but no config value reaches a shell unquoted)."""
    import shlex

    args = []
    for key, value in train_config_values().items():
        if isinstance(value, bool):
            value = str(value).lower()
        args.append(f"--set {shlex.quote(f'{key}={value}')}")
    return " ".join(args)


def train_resources():
    """What the train job asks Slurm for beyond memory and time. One host: `gpu` GPUs. Several
    (training.nodes): `gpu` GPUs in all and one task per GPU (per host in a CPU run), which the
    job starts itself with srun: the SLURM plugin runs the command of a job with an `mpi`
    resource as it is, on the job's first host, rather than as one srun task."""
    resources = {"gpu": GPUS * NODES}
    if NODES > 1:
        resources.update(nodes=NODES, tasks=NODES * max(1, GPUS), mpi="srun")
        if GPUS:
            resources["tasks_per_gpu"] = 1
    return resources


def train_launcher(wildcards, threads, resources):
    """What starts `farside-gan train`, from the job's resources (the profile may set them)."""
    gpu = int(resources.get("gpu", 0))
    if resources.get("mpi"):
        # Ranks on every host of the Slurm job: srun, a rendezvous on the first host. Each task
        # gets the CPUs the SLURM plugin asked for it (the job step's own default is one).
        per_gpu = int(resources.get("tasks_per_gpu", 1)) if gpu else 0
        if int(resources.get("cpus_per_task", 0)) > 0:
            cpus = int(resources.cpus_per_task)
        elif gpu and int(resources.get("cpus_per_gpu", 0)) > 0:
            cpus = max(1, int(resources.cpus_per_gpu) // per_gpu)
        else:
            cpus = threads
        return (f"python -m farside_gan.distributed --srun --nodes={int(resources.get('nodes', 1))}"
                f" --ntasks={int(resources.tasks)} --ntasks-per-gpu={per_gpu}"
                f" --cpus-per-task={cpus}")
    # Several GPUs of one host: one process per GPU, their rendezvous on 127.0.0.1
    # (torchrun --standalone's stores listen on every interface; farside_gan/distributed.py).
    if gpu > 1:
        return f"python -m farside_gan.distributed --nproc-per-node={gpu}"
    return FARSIDE_GAN
