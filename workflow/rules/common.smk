# What is Snakemake's own: file naming, the rules' inputs and params, resources. The
# configuration (validated, defaults filled in, checked: the Snakefile) and its calendar (the
# observation times, the periods that batch them, the evaluation months) are the library's:
# farside_gan/config/.
#
# The unit of work is the *period* (fetch.batch: a month, a day or a single time): one fetch,
# one prepare, one farside inference and one quicklook job per instrument and period. The DAG is
# known up front (no checkpoints): a job that finds a frame unusable records why and goes on,
# and the later jobs of its period read those records. The 2011-2017 run is 956 jobs.

import shlex
from datetime import datetime
from pathlib import Path

from farside_gan.config.schedule import Schedule
from farside_gan.config.workflow import fetch_source, train_values
from farside_gan.core.instruments import (CHANNELS, FARSIDE_INPUTS, INSTRUMENTS, OBSERVERS,
                                          TIME_KEY_FORMAT, TRAINING_INPUT, TRAINING_TARGET)

# Rules run the library as `python -m farside_gan ...` with the repository on PYTHONPATH, so the
# same shell lines work in the project's virtualenv and in the conda envs of envs/ (which hold
# the dependencies; the package itself is this checkout). (Braces doubled: Snakemake formats the
# prefix like the shell line.)
shell.prefix(f'export PYTHONPATH="{REPO}${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; ')

# The conda environments of --use-conda (relative to this directory, where every rule is).
CONDA_ENV = "../../envs/farside-gan.yaml"  # the CPU rules
GPU_CONDA_ENV = "../../envs/farside-gan-gpu.yaml"  # train and predict

SCHEDULE = Schedule(config)
SPACECRAFT = {OBSERVERS[i]: i for i in FARSIDE_INPUTS}  # results/farside/<spacecraft>/
INSTRUMENT_OF_OBSERVER = {observer: i for i, observer in OBSERVERS.items()}
NEARSIDE_OBSERVER = OBSERVERS[TRAINING_INPUT]
# The spacecraft with farside times (a range in farside.spacecraft), in the registry's order.
FARSIDE_SPACECRAFT = [sc for sc, i in SPACECRAFT.items() if SCHEDULE.times(i)]
EVAL_PERIODS = SCHEDULE.eval_periods  # near-side maps are made (and scored) for these
SYNTHETIC = config["synthetic"]["enabled"]
# The GPUs per host that training asks for (0 in CPU runs: the demo), and its hosts.
GPUS = 0 if config["training"]["device"] == "cpu" else config["training"]["gpus"]
NODES = config["training"]["nodes"]


wildcard_constraints:
    instrument="|".join(INSTRUMENTS),
    spacecraft="|".join(SPACECRAFT),
    observer="|".join(INSTRUMENT_OF_OBSERVER),
    period=r"\d{6}|\d{8}|\d{8}T\d{4}",


def quoted(*values):
    """The values as shell words, each quoted: what params give a shell line (no config value
    reaches a shell unquoted)."""
    return " ".join(shlex.quote(str(v)) for v in values)


def local_cores(default):
    """--cores of a local run (every core there, when a job can use them); `default` where
    Snakemake has no core count: a cluster executor (where it is what a job asks its node for)
    and calls that run no job (--report, --lint), for which `workflow.cores` is an error."""
    try:
        return workflow.cores
    except WorkflowError:
        return default


def iso(time):
    """Time key -> ISO string for the command line."""
    return datetime.strptime(time, TIME_KEY_FORMAT).strftime("%Y-%m-%dT%H:%M")


def fetch_index(instrument, period):
    return f"data/raw/{instrument}/{period}/records.json"


def prepared_dir(instrument, period):
    return f"data/prepared/{instrument}/{period}"


def prepared_dirs(instrument):
    return [prepared_dir(instrument, p) for p in SCHEDULE.periods(instrument)]


def farside_map_dirs():
    return [f"results/farside/{sc}/{p}" for sc in FARSIDE_SPACECRAFT
            for p in SCHEDULE.periods(SPACECRAFT[sc])]


def quicklook_dirs():
    return [d.replace("results/farside/", "results/quicklook/", 1) for d in farside_map_dirs()]


# ---------------------------------------------------------------- download (rules/download.smk)

def archive_input(wildcards):
    """The demo's synthetic archive must exist before anything is fetched from it."""
    return rules.synth_archive.output if SYNTHETIC else []


def fetch_request(wildcards):
    """Everything a period's fetch depends on (times, source, tolerance, eclipse periods)."""
    inst, fetch = wildcards.instrument, config["fetch"]
    return {"times": SCHEDULE.times_in(inst, wildcards.period),
            "source": fetch_source(config, inst), "tolerance": fetch["tolerance"],
            "eclipse_periods": fetch["eclipse_periods"], "jsoc_url": fetch["jsoc_url"]}


def fetch_times(wildcards):
    return quoted(*map(iso, SCHEDULE.times_in(wildcards.instrument, wildcards.period)))


def fetch_access(wildcards):
    """`fetch-period`'s JSOC options (an address for jsoc and fido, another DRMS server for
    jsoc) and the eclipse periods whose frames it drops."""
    fetch, source = config["fetch"], fetch_source(config, wildcards.instrument)
    words = []
    if source in ("jsoc", "fido") and fetch["jsoc_email"]:
        words += ["--jsoc-email", fetch["jsoc_email"]]
    if source == "jsoc" and fetch["jsoc_url"]:
        words += ["--jsoc-url", fetch["jsoc_url"]]
    for period in fetch["eclipse_periods"]:
        words += ["--eclipse-period", period]
    return quoted(*words)


def synthetic_archive_spec():
    """The synthetic archive holds each instrument at the times the workflow fetches (AIA and HMI
    at the training times, each STEREO at its farside times) and nothing else:
    [(instruments, start, end, cadence hours)]."""
    groups = [(",".join(instruments), start, end, hours)
              for instruments, start, end, hours in SCHEDULE.spans]
    return {"groups": groups, **config["synthetic"]}


def synthetic_archive_groups(wildcards):
    """synth-archive's `--group INSTRUMENTS START END CADENCE`, one per time grid."""
    return " ".join(f"--group {quoted(instruments, start, end, f'{hours}h')}"
                    for instruments, start, end, hours in synthetic_archive_spec()["groups"])


# ---------------------------------------------------------------- prepare, dataset, train

def prepare_inputs(wildcards):
    inputs = {"index": fetch_index(wildcards.instrument, wildcards.period)}
    if INSTRUMENTS[wildcards.instrument].calibration_tables:  # AIA: pointing, degradation
        inputs["calibration"] = "data/calibration"
    return inputs


def expected_conventions():
    """The frame conventions image: and normalize: fix, which `farside-gan train` checks the
    training data's headers against (farside_gan.core.conventions)."""
    image, normalize = config["image"], config["normalize"]
    return {"size": image["size"], "rsun_px": image["rsun_px"],
            "mask_radius": image["mask_radius"], "euv_median": normalize["euv_median"],
            "euv_clip": ",".join(str(c) for c in normalize["euv_clip"]),
            "hmi_clip": normalize["hmi_clip"]}


def train_settings():
    """`--set key=value` for each setting `farside-gan train` is given (train_values) and
    `--expect key=value` for each of expected_conventions(), quoted for the shell."""
    args = []
    for option, values in (("--set", train_values(config)), ("--expect", expected_conventions())):
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
                f" --nodes={int(resources.get('nodes', 1))} --ntasks={int(resources.tasks)}"
                f" --ntasks-per-gpu={per_gpu}"
                f" --cpus-per-task={cpus}")
    # Several GPUs of one host: one process per GPU, their rendezvous on 127.0.0.1
    # (torchrun --standalone's stores listen on every interface;
    # farside_gan/training/distributed.py).
    if gpu > 1:
        return f"python -m farside_gan.training.distributed --nproc-per-node={gpu}"
    return "python -m farside_gan"


# ---------------------------------------------------------------- inference and uncertainty
# The generated maps' uncertainty: an ensemble of generators in the predict rules (infer.smk),
# and the synchronic Carrington maps of each period with farside maps (synchronic.smk).
ENSEMBLE_MEMBERS = config["synchronic"]["ensemble_members"]
SYNCHRONIC = config["synchronic"]
UNCERTAINTY_CALIBRATION = "results/uncertainty/calibration.json"
# With an ensemble, the synchronic maps' uncertainty is calibrated on the near side: the factor
# that puts 68.3 % of the evaluation months' errors against HMI within it (the library refuses
# a configuration without evaluation months to calibrate on).
CALIBRATES_UNCERTAINTY = bool(ENSEMBLE_MEMBERS and SYNCHRONIC["calibrate_uncertainty"])


def ensemble_args():
    """The predict rules' ensemble option, quoted for the shell ('' without an ensemble)."""
    return quoted("--ensemble-members", ENSEMBLE_MEMBERS) if ENSEMBLE_MEMBERS else ""


# ---------------------------------------------------------------- evaluation
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


def evaluate_comparisons(wildcards):
    """evaluate's `--comparison LABEL PREDICTIONS TRUTH`, one per comparison."""
    return " ".join(f"--comparison {quoted(label, predictions, truth)}"
                    for label, predictions, truth, _ in comparisons())


# ---------------------------------------------------------------- whole-Sun maps

def synchronic_periods():
    """Periods with farside times: one synchronic job each."""
    return sorted({p for sc in FARSIDE_SPACECRAFT for p in SCHEDULE.periods(SPACECRAFT[sc])})


def synchronic_outputs():
    if not SYNCHRONIC["enabled"]:
        return []
    return [path for p in synchronic_periods()
            for path in (f"results/synchronic/{p}", f"results/quicklook/synchronic/{p}",
                         f"results/quicklook/uncertainty/{p}")]


def calibration_pairs(wildcards):
    """The near-side maps of the evaluation months and the HMI directories they are scored
    against (as evaluate's nearside/sdo/hmi comparison)."""
    return {"maps": [f"results/nearside/{p}" for p in EVAL_PERIODS],
            "observed": [prepared_dir(TRAINING_TARGET, p) for p in EVAL_PERIODS]}


def calibration_pair_args(wildcards, input):
    """calibrate-uncertainty's `--pair MAPS HMI_CHANNEL_DIR`, one per evaluation period."""
    [channel] = CHANNELS[TRAINING_TARGET]
    return " ".join(f"--pair {quoted(maps, Path(observed, 'aligned', channel))}"
                    for maps, observed in zip(input.maps, input.observed))


def synchronic_grid():
    """The grid options of `synchronic` and `calibrate-uncertainty` (one grid for both: the
    factor is fitted on the synchronic maps' grid, where it is applied)."""
    return quoted("--projection", SYNCHRONIC["projection"], "--pixels", *SYNCHRONIC["pixels"],
                  "--radial" if SYNCHRONIC["radial"] else "--no-radial",
                  "--mu-min", SYNCHRONIC["mu_min"], "--algorithm", SYNCHRONIC["algorithm"])


def synchronic_inputs(wildcards):
    """The period's farside map directories and, when HMI was fetched in it, its prepared
    HMI directory (the near side of each time); the uncertainty's calibration."""
    inputs = {sc: f"results/farside/{sc}/{wildcards.period}" for sc in FARSIDE_SPACECRAFT
              if wildcards.period in SCHEDULE.periods(SPACECRAFT[sc])}
    if wildcards.period in SCHEDULE.periods(TRAINING_TARGET):
        inputs[TRAINING_TARGET] = prepared_dir(TRAINING_TARGET, wildcards.period)
    if CALIBRATES_UNCERTAINTY:
        inputs["calibration"] = UNCERTAINTY_CALIBRATION
    return inputs


def synchronic_sources(wildcards, input):
    """synchronic's sources: `--farside SPACECRAFT=DIR` each, `--hmi-prepared DIR`, and the
    uncertainty's `--uncertainty-calibration FILE`, as the period has them."""
    words = []
    for sc in FARSIDE_SPACECRAFT:
        if sc in input.keys():
            words += ["--farside", f"{sc}={getattr(input, sc)}"]
    if TRAINING_TARGET in input.keys():
        words += ["--hmi-prepared", getattr(input, TRAINING_TARGET)]
    if "calibration" in input.keys():
        words += ["--uncertainty-calibration", input.calibration]
    return quoted(*words)


# ---------------------------------------------------------------- the report's landing page
# What it shows of the maps (report_page in rules/report.smk) is the latest map of each gallery:
# each spacecraft's farside quicklooks, the synchronic maps and, with an ensemble, their
# uncertainty.

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


def report_page_sources(wildcards, input):
    """report-page's `--summary FILE` (when evaluate runs) and `--gallery TITLE DIR` for each
    directory of each gallery."""
    words = ["--summary", input.summary] if "summary" in input.keys() else []
    for title, dirs in report_galleries().items():
        for d in dirs:
            words += ["--gallery", title, d]
    return quoted(*words)
