"""Farside accuracy, measured: the benchmark configuration end to end, scored against the truth.

    python benchmarks/bench_accuracy.py --budget-minutes 4 --variants untrained,default
    python benchmarks/bench_accuracy.py --epochs 40 --variants cc      # later, same data
    python benchmarks/bench_accuracy.py --smoke --variants untrained,default   # CPU, minutes

Runs the workflow (``config/benchmark.yaml``: a synthetic 2012, 512 px, the default model) with
Snakemake, as a user would: first everything the model does not depend on (synthetic archive,
fetch, preparation, manifest, the true field on every map's grid), then, per variant, training,
near- and farside inference and evaluation. Variants differ only in their ``training:`` section
and run in their own run directories (``runs/benchmark[_<variant>]``) that share the first run's
data and truth maps (symbolic links):

* ``default``: the published objective (LSGAN + 10 x feature matching);
* ``cc``: the same plus the Pix2PixCC correlation term (``lambda_cc: 5``, 4 scales);
* ``untrained``: the generator at its initial weights (``epochs: 0``), for scale.

``--budget-minutes`` sets the epochs from the training speed measured on this machine's GPU
with the real data loader (a few steps), so a run fits a lease; ``--epochs`` fixes them (use the
same for variants that are compared). The printed table puts each variant's binned CC, region
CCs, flux ratios and leading-polarity score next to the Hale-rule oracle's CC on the same maps
(a scale for what EUV brightness says about polarity), the project's accuracy targets
(docs/DESIGN.md) and the published real-data figures; ``--out DIR`` also gets every summary,
metrics and validation CSV and a results JSON. Results worth keeping go to
``benchmarks/results/<YYYY-MM-DD>_<device>_<what>/``, listed in ``benchmarks/results/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
VARIANTS = {
    "default": {},
    "cc": {"lambda_cc": 5.0, "n_cc": 4},
    "untrained": {"epochs": 0, "epoch_decay": 0},
}
#: The project's accuracy targets (binned CC against the truth; flux within 10%; leading
#: polarity right for 80% of active regions; docs/DESIGN.md) and
#: what Jeong et al. 2022 report on real data (8x8-binned CC, near side against HMI).
TARGETS = {"nearside": 0.85, "farside": 0.80}
PUBLISHED = "Jeong et al. 2022 (real data, near side vs HMI): CC 0.88 full disk, 0.91 AR, 0.70 QS"
SMOKE = {  # a CPU-sized version of the benchmark: same chain, tiny data and model
    "start": "2012-08-25T00:00", "end": "2012-09-04T00:00", "cadence_hours": 24,
    "synthetic": {"size": 128, "euvi_size": 128},
    "image": {"size": 64, "rsun_px": 28.125},
    "model": {"ngf": 8, "ndf": 8, "n_downsample": 2, "n_residual": 1},
    "training": {"batch_size": 2, "num_workers": 0, "device": "cpu", "gpus": 0,
                 "preview_every": 0, "val_every_epochs": 1},
    "farside": {"cadence_hours": 96, "spacecraft": {
        "euvi_a": {"start": "2012-08-25T00:00", "end": "2012-09-04T00:00"},
        "euvi_b": {"start": "2012-08-25T00:00", "end": "2012-09-04T00:00"}}},
}


def merged(*docs: dict) -> dict:
    """Nested dict merge, later documents winning (as Snakemake merges --configfile files)."""
    out: dict = {}
    for doc in docs:
        for key, value in doc.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out


def snakemake(workdir: Path, configs: list[Path], *args: str, log: Path) -> float:
    """Run the workflow from ``workdir``'s parent checkout; returns the wall time (s)."""
    # run from ``workdir`` without --directory, which would override the config's run directory;
    # a local archive takes all the downloads at once, and the maps' inference jobs share the GPU
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--scheduler",
           "greedy", *args, "--resources", "gpu=8", "downloads=64",
           "--configfile", *map(str, configs)]
    start = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=workdir)
    seconds = time.perf_counter() - start
    if proc.returncode:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"snakemake failed ({proc.returncode}) after {seconds:.0f} s; log {log}:\n{tail}")
    return seconds


def probe_speed(manifest: Path, config: dict, steps: int = 12, warmup: int = 4) -> tuple[float, int]:
    """(training samples/s with the configured model, batch and loader; training samples)."""
    import torch

    from farside_gan.training.data import PairedFitsDataset
    from farside_gan.training.trainer import TrainConfig, Trainer
    values = {**config.get("model", {}), **config.get("training", {})}
    values = {k: v for k, v in values.items() if k not in ("device", "gpus")}
    train_config = TrainConfig.from_dict(values)
    data = PairedFitsDataset.from_manifest(manifest, "train", seed=train_config.seed)
    device = "cpu" if config.get("training", {}).get("device") == "cpu" else "auto"
    trainer = Trainer(train_config, data, manifest.parent / "probe", device=device)
    loader = iter(trainer.make_loader(list(range(len(data))) * (1 + (warmup + steps) * 8 // len(data))))
    for _ in range(warmup):
        trainer.train_step(next(loader))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(next(loader))  # returns floats: synchronizes the GPU
    rate = steps * train_config.batch_size / (time.perf_counter() - start)
    if hasattr(loader, "close"):  # the reader threads end with the iteration
        loader.close()
    del trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rate, len(data)


def link_shared(base: Path, run: Path) -> None:
    """The variant's run directory reads the base run's data and truth maps."""
    (run / "results").mkdir(parents=True, exist_ok=True)
    for rel in ("data", "results/truth"):
        (base / rel).mkdir(parents=True, exist_ok=True)
        target = run / rel
        if not target.exists():
            target.symlink_to(os.path.relpath(base / rel, target.parent), target_is_directory=True)


def read_summary(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["statistic"] == "mean"]


def fmt(value, digits=2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "nan" if math.isnan(v) else f"{v:.{digits}f}"


def table(results: dict) -> str:
    lines = ["| variant | comparison | maps | CC | binned CC | AR CC | QS CC | unsigned flux ratio "
             "| leading polarity right | Hale-rule oracle binned CC | target |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for variant, rows in results.items():
        for r in rows:
            label = f"{r['side']}/{r['observer']}/{r['truth']}"
            target = f">= {TARGETS[r['side']]}" if r["truth"] == "synthetic" else ""
            lead = (f"{int(float(r['n_leading_right']))}/{int(float(r['n_leading']))} "
                    f"({fmt(r['leading_right_fraction'])})")
            lines.append(f"| {variant} | {label} | {r['n_maps']} | {fmt(r['cc'])} | "
                         f"{fmt(r['cc_binned'])} | {fmt(r['cc_ar'])} | {fmt(r['cc_qs'])} | "
                         f"{fmt(r['unsigned_flux_ratio'])} | {lead} | "
                         f"{fmt(r['oracle_cc_binned'])} | {target} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=REPO / "config/benchmark.yaml")
    p.add_argument("--variants", default="untrained,default", help=f"comma list of {sorted(VARIANTS)}")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="training minutes per variant: epochs from the measured speed")
    p.add_argument("--epochs", type=int, default=None, help="epochs per variant (fixed)")
    p.add_argument("--max-epochs", type=int, default=200,
                   help="at most this many epochs from --budget-minutes")
    p.add_argument("--cores", type=int, default=os.cpu_count())
    p.add_argument("--root", type=Path, default=REPO, help="directory that holds runs/")
    p.add_argument("--out", type=Path, default=None, help="copy tables and CSVs here (a .tar.gz)")
    p.add_argument("--smoke", action="store_true", help="CPU-sized data and model (minutes)")
    args = p.parse_args()

    base_config = yaml.safe_load(args.config.read_text())
    smoke = SMOKE if args.smoke else {}
    config = merged(base_config, smoke)
    base = args.root / config["workdir"]
    base.mkdir(parents=True, exist_ok=True)
    configs = [args.config.resolve()]
    if args.smoke:
        smoke_file = base / "smoke.yaml"
        smoke_file.write_text(yaml.safe_dump(smoke))
        configs.append(smoke_file)
    log = base / "bench_accuracy.log"
    timings: dict[str, float] = {}

    # 1. everything the model does not depend on
    timings["data_and_truth_s"] = snakemake(args.root, configs, "all", "data/manifest.csv",
                                            "--cores", str(args.cores), "--omit-from", "train",
                                            log=log)
    manifest = base / "data/manifest.csv"
    print(f"data and truth maps: {timings['data_and_truth_s']:.0f} s", flush=True)

    # 2. the epochs that fit the budget at the measured speed
    epochs = args.epochs
    rate, n_train = None, None
    if epochs is None and args.budget_minutes:
        os.chdir(base)  # the manifest's paths are relative to the run directory, as for train
        rate, n_train = probe_speed(manifest, config)
        os.chdir(args.root)
        epochs = min(args.max_epochs, max(2, int(rate * args.budget_minutes * 60 / n_train)))
        print(f"training speed {rate:.1f} samples/s on {n_train} samples: {epochs} epochs in "
              f"{args.budget_minutes} min", flush=True)
    results, runs = {}, {}
    for variant in args.variants.split(","):
        settings = dict(VARIANTS[variant])
        if variant != "untrained" and epochs:
            settings.update(epochs=epochs, epoch_decay=epochs // 2)
        run = base if variant == "default" else base.parent / f"{base.name}_{variant}"
        if run != base:
            link_shared(base, run)
        override = base / f"variant_{variant}.yaml"
        override.write_text(yaml.safe_dump({"workdir": str(run.relative_to(args.root)),
                                            "training": settings}))
        seconds = snakemake(args.root, configs + [override], "--cores", str(args.cores),
                            log=log)
        timings[f"{variant}_s"] = seconds
        results[variant] = read_summary(run / "results/evaluation/summary.csv")
        runs[variant] = run
        print(f"{variant}: {seconds:.0f} s (training, inference, evaluation)", flush=True)
        print(table({variant: results[variant]}), flush=True)

    report = {"config": str(args.config), "smoke": args.smoke, "epochs": epochs,
              "train_samples_per_s_probe": rate, "train_samples": n_train,
              "timings_s": timings, "summaries": results}
    print("\n" + table(results))
    print(f"\ntargets: binned CC >= {TARGETS['nearside']} near side and >= "
          f"{TARGETS['farside']} far side against the truth; unsigned flux within 10%; leading "
          f"polarity right for >= 80% of active regions. {PUBLISHED}.")
    print(json.dumps({"epochs": epochs, "probe_samples_per_s": rate, "timings_s": timings}))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_accuracy.json").write_text(json.dumps(report, indent=1))
        (args.out / "bench_accuracy.md").write_text(table(results) + "\n")
        with tarfile.open(args.out / "bench_accuracy_files.tar.gz", "w:gz") as tar:
            for variant, run in runs.items():
                for rel in ("results/evaluation/summary.csv", "results/evaluation/metrics.csv",
                            "results/evaluation/scatter.png", "results/evaluation/flux.png",
                            "results/model/validation.csv", "results/model/losses.csv",
                            "logs/train.log", "data/manifest.csv"):
                    if (run / rel).exists():
                        tar.add(run / rel, arcname=f"{variant}/{rel}")
                maps = sorted((run / "results/evaluation/maps").glob("*.png"))
                for m in maps[::max(1, len(maps) // 6)]:
                    tar.add(m, arcname=f"{variant}/maps/{m.name}")
            tar.add(log, arcname="bench_accuracy.log")


if __name__ == "__main__":
    main()
