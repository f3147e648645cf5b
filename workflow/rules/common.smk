# Shared helpers: the observation-time grids, the periods that batch them, and file naming.
#
# The unit of work is the *period* (fetch.batch: a month, a day or a single time): one fetch,
# one prepare, one farside inference and one quicklook job per instrument and period. The DAG is
# known up front (no checkpoints): a job that finds a frame unusable records why and goes on,
# and the later jobs of its period read those records. The 2011-2017 run is 956 jobs.

import sys
from datetime import datetime, timedelta
from pathlib import Path

# Rules run the library as `python -m farside_gan ...` with the repository on PYTHONPATH, so the
# same shell lines work in the project's virtualenv and in the conda envs of envs/ (which hold
# the dependencies; the package itself is this checkout).
REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO))  # the library's conventions, read here and by every job
from farside_gan.config.training import WORKFLOW_KEYS  # noqa: E402
from farside_gan.core.instruments import (CHANNELS, FARSIDE_INPUTS, INSTRUMENTS,  # noqa: E402
                                          OBSERVERS, TIME_KEY_FORMAT, TRAINING_INPUT,
                                          TRAINING_TARGET)
from farside_gan.prepare.manifest import split_months  # noqa: E402

FARSIDE_GAN = "python -m farside_gan"
# (braces doubled: Snakemake formats the prefix like the shell line)
shell.prefix(f'export PYTHONPATH="{REPO}${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; ')

SPACECRAFT = {OBSERVERS[i]: i for i in FARSIDE_INPUTS}  # results/farside/<spacecraft>/
INSTRUMENT_OF_OBSERVER = {observer: i for i, observer in OBSERVERS.items()}
NEARSIDE_OBSERVER = OBSERVERS[TRAINING_INPUT]


wildcard_constraints:
    instrument="|".join(INSTRUMENTS),
    spacecraft="|".join(SPACECRAFT),
    observer="|".join(INSTRUMENT_OF_OBSERVER),
    period=r"\d{6}|\d{8}|\d{8}T\d{4}",


def local_cores(default):
    """--cores of a local run (every core there, when a job can use them); `default` where
    Snakemake has no core count: a cluster executor (where it is what a job asks its node for)
    and calls that run no job (--report, --lint), for which `workflow.cores` is an error."""
    try:
        return workflow.cores
    except WorkflowError:
        return default


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
    if instrument in (TRAINING_INPUT, TRAINING_TARGET):
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
EVAL_PERIODS = [p for p in periods(TRAINING_INPUT) if int(p[4:6]) in _EVAL_MONTHS.get(int(p[:4]), ())]


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
    source = config["fetch"]["euvi_source" if instrument in FARSIDE_INPUTS else "source"]
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
    groups = [(f"{TRAINING_INPUT},{TRAINING_TARGET}", config["start"], config["end"],
               config["cadence_hours"])]
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
    near = NEARSIDE_OBSERVER
    for p in EVAL_PERIODS:
        target = prepared_dir(TRAINING_TARGET, p)
        out.append((f"nearside/{near}/{TRAINING_TARGET}", f"results/nearside/{p}",
                    str(Path(target, "aligned", *CHANNELS[TRAINING_TARGET])), target))
    if SYNTHETIC:
        out += [(f"nearside/{near}/synthetic", f"results/nearside/{p}", f"results/truth/{near}/{p}",
                 f"results/truth/{near}/{p}") for p in EVAL_PERIODS]
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
    if INSTRUMENTS[wildcards.instrument].calibration_tables:  # AIA: pointing, degradation
        inputs["calibration"] = "data/calibration"
    return inputs


def train_config_values():
    """What `farside-gan train` is given: the model: and training: keys but the workflow's own."""
    return {k: v for section in ("model", "training") for k, v in config[section].items()
            if k not in WORKFLOW_KEYS}


def expected_conventions():
    """The frame conventions image: and normalize: fix, which `farside-gan train` checks the
    training data's headers against (farside_gan.core.conventions)."""
    image, normalize = config["image"], config["normalize"]
    return {"size": image["size"], "rsun_px": image["rsun_px"],
            "mask_radius": image["mask_radius"], "euv_median": normalize["euv_median"],
            "euv_clip": ",".join(str(c) for c in normalize["euv_clip"]),
            "hmi_clip": normalize["hmi_clip"]}


def check_train_config():
    """Fail while planning on what the schema cannot say (e.g. epoch_decay above epochs)."""
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # this checkout's farside_gan (train_config needs no torch)
    from farside_gan.config.training import TrainConfig
    from farside_gan.core.header_checks import check_image_size_for_generator

    try:
        model = TrainConfig.from_dict(train_config_values())
    except (TypeError, ValueError) as exc:
        raise WorkflowError(f"config: model/training: {exc}") from exc
    try:  # the size every job from align on makes: refused before any of them runs
        check_image_size_for_generator(config["image"]["size"], model.n_downsample)
    except ValueError as exc:
        raise WorkflowError(f"config: image.size does not fit the generator (model.n_downsample "
                            f"{model.n_downsample}): {exc}") from exc


check_train_config()


def train_settings():
    """`--set key=value` for each of train_config_values() and `--expect key=value` for each of
    expected_conventions(), quoted for the shell (the schema leaves no free text there, but no
    config value reaches a shell unquoted)."""
    import shlex

    args = []
    for option, values in (("--set", train_config_values()), ("--expect", expected_conventions())):
        for key, value in values.items():
            if isinstance(value, bool):
                value = str(value).lower()
            args.append(f"{option} {shlex.quote(f'{key}={value}')}")
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
        return (f"python -m farside_gan.training.distributed --srun"
                f" --nodes={int(resources.get('nodes', 1))} --ntasks={int(resources.tasks)} --ntasks-per-gpu={per_gpu}"
                f" --cpus-per-task={cpus}")
    # Several GPUs of one host: one process per GPU, their rendezvous on 127.0.0.1
    # (torchrun --standalone's stores listen on every interface;
    # farside_gan/training/distributed.py).
    if gpu > 1:
        return f"python -m farside_gan.training.distributed --nproc-per-node={gpu}"
    return FARSIDE_GAN


# What the report's landing page shows of the maps (report_page in rules/report.smk) is the
# latest map of each gallery: each spacecraft's farside quicklooks, the synchronic maps and,
# with an ensemble, their uncertainty.
def report_galleries():
    """{title: [directories of PNGs]}: the landing page shows the latest PNG of each."""
    galleries = {}
    for d in quicklook_dirs():
        spacecraft = d.split("/")[2]  # results/quicklook/<spacecraft>/<period>
        title = f"{'STEREO-A' if spacecraft == 'stereo_a' else 'STEREO-B'} farside"
        galleries.setdefault(title, []).append(d)
    if SYNCHRONIC["enabled"]:
        periods_ = synchronic_periods()
        if periods_:
            galleries["Synchronic"] = [f"results/quicklook/synchronic/{p}" for p in periods_]
        if periods_ and ENSEMBLE_MEMBERS:
            galleries["Uncertainty"] = [f"results/quicklook/uncertainty/{p}" for p in periods_]
    return galleries


def report_page_inputs(wildcards):
    inputs = {"manifest": "data/manifest.csv", "losses": "results/model/losses.csv",
              "maps": [d for dirs in report_galleries().values() for d in dirs]}
    if comparisons():
        inputs["summary"] = "results/evaluation/summary.csv"
    return inputs


def report_page_commands(wildcards, input, output):
    command = ["report-page", "--manifest", input.manifest, "--losses", input.losses,
               "--out-dir", str(Path(output.page).parent)]
    if "summary" in input.keys():
        command += ["--summary", input.summary]
    for title, dirs in report_galleries().items():
        for d in dirs:
            command += ["--gallery", title, d]
    return [command]


# The generated maps' uncertainty: an ensemble of generators in the predict rules (infer.smk),
# and the synchronic Carrington maps of each period with farside maps (synchronic.smk).
ENSEMBLE_MEMBERS = config["synchronic"]["ensemble_members"]


def check_ensemble():
    """An ensemble of N needs N - 1 checkpoints kept before the last epoch; say so while
    planning, not after training."""
    if not ENSEMBLE_MEMBERS:
        return
    training = config["training"]
    keep, epochs = training["keep_every_epochs"], training["epochs"]
    kept = (epochs - 1) // keep if keep and epochs > 0 else 0
    if kept < ENSEMBLE_MEMBERS - 1:
        raise WorkflowError(
            f"config: synchronic.ensemble_members {ENSEMBLE_MEMBERS} needs "
            f"{ENSEMBLE_MEMBERS - 1} checkpoints kept before the last epoch, but training "
            f"keeps {kept} (training.epochs {epochs}, training.keep_every_epochs {keep}); "
            "keep more (a smaller keep_every_epochs) or ask for fewer members")


check_ensemble()


def ensemble_args():
    """The predict rules' ensemble option, quoted for the shell ('' without an ensemble)."""
    if not ENSEMBLE_MEMBERS:
        return ""
    import shlex

    return f"--ensemble-members {shlex.quote(str(ENSEMBLE_MEMBERS))}"


SYNCHRONIC = config["synchronic"]


def synchronic_periods():
    """Periods with farside times: one synchronic job each."""
    return sorted({p for sc in FARSIDE_TIMES for p in periods(SPACECRAFT[sc])})


def synchronic_outputs():
    if not SYNCHRONIC["enabled"]:
        return []
    return [path for p in synchronic_periods()
            for path in (f"results/synchronic/{p}", f"results/quicklook/synchronic/{p}",
                         f"results/quicklook/uncertainty/{p}")]


UNCERTAINTY_CALIBRATION = "results/uncertainty/calibration.json"


def calibrates_uncertainty():
    """With an ensemble, the synchronic maps' uncertainty is calibrated on the near side: the
    factor that puts 68.3 % of the evaluation months' errors against HMI within it."""
    if not (ENSEMBLE_MEMBERS and SYNCHRONIC["calibrate_uncertainty"]):
        return False
    if not EVAL_PERIODS:
        raise WorkflowError(
            "config: synchronic.calibrate_uncertainty needs near-side maps of an evaluation "
            "month to calibrate against HMI, and this configuration has none (start/end and "
            "dataset.eval_months); set it to false")
    return True


calibrates_uncertainty()  # a configuration it cannot serve fails while planning


def calibration_pairs(wildcards):
    """The near-side maps of the evaluation months and the HMI directories they are scored
    against (as evaluate's nearside/sdo/hmi comparison)."""
    return {"maps": [f"results/nearside/{p}" for p in EVAL_PERIODS],
            "observed": [prepared_dir(TRAINING_TARGET, p) for p in EVAL_PERIODS]}


def synchronic_grid_args():
    """The grid options of `synchronic` and `calibrate-uncertainty` (one grid for both)."""
    return ["--projection", SYNCHRONIC["projection"], "--pixels", *SYNCHRONIC["pixels"],
            "--radial" if SYNCHRONIC["radial"] else "--no-radial",
            "--mu-min", SYNCHRONIC["mu_min"], "--algorithm", SYNCHRONIC["algorithm"]]


def calibration_commands(wildcards, input, output):
    """The factor is fitted on the synchronic maps' grid, where it is applied."""
    command = ["calibrate-uncertainty", "--out", output[0], *synchronic_grid_args()]
    [channel] = CHANNELS[TRAINING_TARGET]
    for maps, observed in zip(input.maps, input.observed):
        command += ["--pair", maps, str(Path(observed, "aligned", channel))]
    return [command]


def synchronic_inputs(wildcards):
    """The period's farside map directories and, when HMI was fetched in it, its prepared
    HMI directory (the near side of each time); the uncertainty's calibration."""
    inputs = {sc: f"results/farside/{sc}/{wildcards.period}" for sc in FARSIDE_TIMES
              if wildcards.period in periods(SPACECRAFT[sc])}
    if wildcards.period in periods(TRAINING_TARGET):
        inputs[TRAINING_TARGET] = prepared_dir(TRAINING_TARGET, wildcards.period)
    if calibrates_uncertainty():
        inputs["calibration"] = UNCERTAINTY_CALIBRATION
    return inputs


def synchronic_commands(wildcards, input, output):
    command = ["synchronic", "--out-dir", output.maps, "--png-dir", output.plots,
               "--uncertainty-png-dir", output.uncertainty, *synchronic_grid_args(),
               "--weight-power", SYNCHRONIC["weight_power"]]
    for sc in FARSIDE_TIMES:
        if sc in input.keys():
            command += ["--farside", f"{sc}={getattr(input, sc)}"]
    if TRAINING_TARGET in input.keys():
        command += ["--hmi-prepared", getattr(input, TRAINING_TARGET)]
    if "calibration" in input.keys():
        command += ["--uncertainty-calibration", input.calibration]
    return [command]
