"""GPU benchmark of farside-gan's Pix2PixHD: the reference implementation's step against ours.

One run prints one table: hardware ceilings and the floor they imply, the training step as the
reference implementation runs it (fp32, batch 1, default PyTorch settings; "seed" in the
options and the output) and ours side by side with the ratio,
generator inference in ms per map, peak memory, and the throughput of the real data loader
(``farside_gan.training.data.PairedFitsDataset`` over FITS pairs written by ``farside_gan.core.fitsio``).

    python benchmarks/bench_gpu.py                       # GPU: 1024 px, default architecture
    python benchmarks/bench_gpu.py --tiny                # CPU smoke test (CI): 64 px, tiny model
    python benchmarks/bench_gpu.py --json out.json       # also write every number as JSON
    python benchmarks/bench_gpu.py --sweep               # time each speed option on its own
    python benchmarks/bench_gpu.py --learning            # bf16 vs fp32 and batch 1 vs B learning

Timings use CUDA events after warm-up, median of repeated windows, on random inputs in [-1, 1]
rotated among several buffers (never zeros). Under torchrun it measures data-parallel scaling:
``torchrun --standalone --nproc_per_node=2 benchmarks/bench_gpu.py --ddp``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from farside_gan.model.accel import GeneratorRunner
from farside_gan.model.networks import init_weights
from farside_gan.training.trainer import TrainConfig, Trainer, build_networks

# FLOP counts at 1024 x 1024 for the default architecture (docs/DESIGN.md); they scale with pixels.
TRAIN_TFLOP_1024 = 2.5
INFER_TFLOP_1024 = 0.44


# Training settings (TrainConfig fields). SEED is the plain PyTorch step of the reference
# implementation: fp32, batch 1, three D passes, no fused/compiled/autotuned kernels.
SEED = dict(batch_size=1, mixed_precision="fp32", channels_last=False, fused_adam=False,
            compile=False, cudnn_benchmark=False, single_d_pass=False)
# Ours: TrainConfig's defaults on CUDA (bf16, fused Adam, compile, cuDNN autotune, single D
# pass) at a larger batch.
OURS = dict(batch_size=8)
SPEED_KEYS = ("mixed_precision", "channels_last", "fused_adam", "compile", "cudnn_benchmark",
              "single_d_pass", "gemm_convs")


#: Architecture overrides of TrainConfig: none for the published model, a tiny one for the CPU.
DEFAULT_SHAPE: dict = {}
TINY_SHAPE = dict(ngf=8, n_downsample=2, n_residual=1, ndf=8, n_D=2)
SHAPE_KEYS = ("ngf", "n_downsample", "n_residual", "ndf", "n_D")


def config_for(shape: dict, **settings) -> TrainConfig:
    return TrainConfig(**shape, progress=False, preview_every=0, **settings)


def label(cfg: TrainConfig) -> str:
    """Short description of a config's speed settings (on CUDA; the CPU runs plain fp32)."""
    if not torch.cuda.is_available():
        return f"b{cfg.batch_size} fp32 (cpu)"
    on = [k for k in SPEED_KEYS[1:] if getattr(cfg, k) and (k != "gemm_convs" or cfg.compile)]
    precision = "bf16" if cfg.mixed_precision == "auto" else cfg.mixed_precision
    return f"b{cfg.batch_size} {precision} " + "+".join(on)


def make_trainer(cfg: TrainConfig, device, workdir) -> Trainer:
    # The step needs no dataset; Trainer only asks for its length.
    return Trainer(cfg, list(range(64)), workdir, device=str(device))


def build_generator(shape: dict, device, seed=0):
    torch.manual_seed(seed)
    G, _ = build_networks(config_for(shape))
    init_weights(G)
    return G.to(device)


# ----------------------------------------------------------------------------- timing helpers

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_ms(fn, device, iters: int, windows: int = 3) -> float:
    """Median over ``windows`` of the mean time per call (ms) of ``iters`` calls."""
    results = []
    for _ in range(windows):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            results.append(start.elapsed_time(end) / iters)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            results.append((time.perf_counter() - t0) * 1e3 / iters)
    return statistics.median(results)


def random_batches(n_sets, batch, size, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return [((torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device),
             (torch.rand(batch, 1, size, size, generator=g) * 2 - 1).to(device))
            for _ in range(n_sets)]


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def random_items(n_sets, batch, size, device, seed=0):
    return [{"input": x, "target": y} for x, y in random_batches(n_sets, batch, size, device, seed)]


def bench_train(cfg: TrainConfig, size, device, iters, warmup, workdir, profile=False,
                keep=None) -> dict:
    """Time ``Trainer.train_step`` (the product's step) under ``cfg``; ``keep`` gets the trainer."""
    trainer = make_trainer(cfg, device, workdir)
    if keep is not None:
        keep.append(trainer)
    data = random_items(3, cfg.batch_size, size, device, cfg.seed)
    reset_peak(device)
    t0 = time.perf_counter()
    for i in range(warmup):
        trainer.train_step(data[i % 3], sync=False)
    sync(device)
    warm_s = time.perf_counter() - t0
    counter = iter(range(10**9))
    ms = timed_ms(lambda: trainer.train_step(data[next(counter) % 3], sync=False), device, iters)
    out = {"variant": label(cfg), "batch": cfg.batch_size, "ms_per_step": ms,
           "samples_per_s": cfg.batch_size * 1e3 / ms, "ms_per_sample": ms / cfg.batch_size,
           "peak_gib": peak_gib(device), "warmup_s": warm_s}
    if profile and device.type == "cuda":
        out["profile"] = profile_table(lambda: trainer.train_step(data[0], sync=False), device)
    return out


def profile_table(fn, device, rows=25) -> str:
    """The kernels that took the most GPU time over two calls, then the operators (with their
    input shapes) that launched the most GPU time, to tell which layer a kernel belongs to."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
        fn()
        fn()
        sync(device)
    kernels = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=rows,
                                        max_name_column_width=70)
    ops = prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cuda_time_total", row_limit=rows, max_name_column_width=40,
        max_shapes_column_width=110)
    return kernels + "\n" + ops


def bench_infer(batch, precision, channels_last, shape, size, device, iters, warmup,
                compile=False, gemm_convs=None, seed=0, profile=False) -> dict:
    """Time the generator through :class:`GeneratorRunner` (what ``predict`` uses)."""
    run = GeneratorRunner(build_generator(shape, device, seed), device, precision,
                          channels_last=channels_last, compile=compile, gemm_convs=gemm_convs)
    xs = [x for x, _ in random_batches(3, batch, size, device, seed)]
    reset_peak(device)
    counter = iter(range(10**9))
    t0 = time.perf_counter()
    for i in range(warmup):
        run(xs[i % 3])
    sync(device)
    warm_s = time.perf_counter() - t0
    ms = timed_ms(lambda: run(xs[next(counter) % 3]), device, iters)
    bf16 = "bf16" if run.bf16 else "fp32"
    out = {"variant": f"b{batch} {bf16}" + (" channels_last" if channels_last else "")
           + (" compile" if compile else "") + (" gemm_convs" if run.gemm_convs else ""), "batch": batch, "ms_per_batch": ms,
           "ms_per_map": ms / batch, "peak_gib": peak_gib(device), "warmup_s": warm_s}
    if profile and device.type == "cuda":
        out["profile"] = profile_table(lambda: run(xs[0]), device)
    return out


def bf16_vs_fp32_maps(G, x, compile=False) -> float:
    """‖G_bf16(x) − G_fp32(x)‖ / ‖G_fp32(x)‖ on the same weights and inputs; ``compile``:
    the bf16 side as ``predict --compile`` runs it (compiled, few-channel convs as GEMMs)."""
    device = x.device
    ref = GeneratorRunner(G, device, "fp32")(x)
    low = GeneratorRunner(copy.deepcopy(G), device, "bf16", compile=compile)(x)
    return float((low - ref).norm() / ref.norm())


# ----------------------------------------------------------------------------- ceilings

def ceilings(device) -> dict:
    """Measured bf16 matmul rate (TFLOP/s) and device-to-device copy bandwidth (TB/s)."""
    if device.type != "cuda":
        n, reps = 512, 5
    else:
        n, reps = 8192, 20
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    ms = timed_ms(lambda: a @ b, device, reps)
    tflops = 2 * n**3 / (ms * 1e-3) / 1e12
    nbytes = 2**30 if device.type == "cuda" else 2**24
    src = torch.rand(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    ms_copy = timed_ms(lambda: dst.copy_(src), device, 10)
    tbps = 2 * nbytes / (ms_copy * 1e-3) / 1e12
    return {"matmul_tflops": tflops, "matmul_dtype": str(dtype).replace("torch.", ""),
            "copy_tbps": tbps}


# ----------------------------------------------------------------------------- data loader

def write_pairs(directory: Path, n: int, size: int, seed=0) -> Path:
    """``n`` stack/target FITS pairs in the project's formats, through farside_gan.core.fitsio."""
    from astropy.io import fits

    from farside_gan.core.fitsio import write_fits
    rng = np.random.default_rng(seed)
    (directory / "input").mkdir(parents=True, exist_ok=True)
    (directory / "target").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stack = (rng.random((3, size, size), dtype=np.float32) * 2 - 1)
        target = (rng.random((size, size), dtype=np.float32) * 2 - 1)
        header = fits.Header({"CHAN1": 304, "CHAN2": 193, "CHAN3": 171, "CTYPE3": "CHANNEL"})
        name = f"2011010{i // 2 + 1}T{(i % 2) * 12:02d}00.fits" if n < 20 else f"pair{i:04d}.fits"
        write_fits(directory / "input" / name, stack, header)
        write_fits(directory / "target" / name, target, fits.Header({"BUNIT": ""}))
    return directory


def loader_rate(loader, device) -> float:
    """Samples/s of a loader's second pass (the first starts workers and reads files once)."""
    for _ in loader:
        pass
    t0, seen = time.perf_counter(), 0
    for item in loader:
        item["input"].to(device, non_blocking=True)
        seen += item["input"].shape[0]
    sync(device)
    return seen / (time.perf_counter() - t0)


def bench_loader(size, device, trainer: Trainer, workers, n_files, seconds=8.0, where=None,
                 fed_threads=()):
    """The real loader on FITS pairs: DataLoader worker processes vs reader threads (the direct
    path that reads into pinned batch rows, and the __getitem__ + collate one), alone, and
    training steps (``trainer``) fed by the direct one."""
    from farside_gan.training.data import PairedFitsDataset
    from farside_gan.training.loader import ThreadedLoader
    cfg, pin = trainer.config, device.type == "cuda"
    out = {"loader_workers": workers, "loader_files": n_files, "loader_dir": where or tempfile.gettempdir()}
    with tempfile.TemporaryDirectory(prefix="bench_pairs_", dir=where) as tmp:
        t0 = time.perf_counter()
        write_pairs(Path(tmp), n_files, size)
        out["write_s"] = time.perf_counter() - t0
        ds = PairedFitsDataset.from_directory(tmp)
        reads = min(8, n_files)
        t0 = time.perf_counter()
        for i in range(reads):
            ds[i]
        out["item_ms"] = (time.perf_counter() - t0) * 1e3 / reads
        rows = (np.empty((3, size, size), np.float32), np.empty((1, size, size), np.float32))
        for key in ("read_into_first_ms", "read_into_ms"):  # header parsed, then mapped directly
            t0 = time.perf_counter()
            for i in range(reads):
                ds.read_into(i, lambda shape: rows)
            out[key] = (time.perf_counter() - t0) * 1e3 / reads
        order = list(range(n_files))
        kw = dict(num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)
        if workers:
            kw["prefetch_factor"] = cfg.prefetch_factor
        out["processes_samples_per_s"] = loader_rate(
            torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, sampler=order, **kw), device)
        threads = max(workers, 1)
        collate = ThreadedLoader(ds, cfg.batch_size, order, threads=threads,
                                 prefetch=cfg.prefetch_factor, pin_memory=pin, direct=False)
        out["threads_collate_samples_per_s"] = loader_rate(collate, device)
        threaded = ThreadedLoader(ds, cfg.batch_size, order, threads=threads,
                                  prefetch=cfg.prefetch_factor, pin_memory=pin)
        out["threads_path"] = "direct" if threaded.direct else "collate"
        out["threads_samples_per_s"] = loader_rate(threaded, device)
        print("loader alone", out, flush=True)
        out["fed_train_samples_per_s"] = fed_rate(trainer, threaded, device, seconds)
        out["fed_variant"] = label(cfg) + f" + {threads} reader threads ({out['threads_path']})"
        # Reader threads share the GIL with the thread that launches the training step.
        out["fed_by_threads"] = {n: fed_rate(trainer, ThreadedLoader(
            ds, cfg.batch_size, order, threads=n, prefetch=cfg.prefetch_factor, pin_memory=pin),
            device, seconds) for n in fed_threads}
        return out


def fed_rate(trainer: Trainer, loader, device, seconds: float) -> float:
    """Samples/s of training steps fed by ``loader`` (epochs repeated for ``seconds``)."""
    seen, t0 = 0, None
    while t0 is None or time.perf_counter() - t0 < seconds:
        for item in loader:
            trainer.train_step(item, sync=False)
            if t0 is None:  # the first step (compilation, autotuning, pipeline fill) is not timed
                sync(device)
                t0 = time.perf_counter()
                continue
            seen += item["input"].shape[0]
    sync(device)
    return seen / (time.perf_counter() - t0)


# ----------------------------------------------------------------------------- learning checks

def toy_sun_pairs(n, size, seed=0):
    """Synthetic pairs like the model tests' (tests/helpers/model.py): Hale-like bipoles, the
    EUV channels local functions of the field (|B|, smoothed |B|, signed B), all in [-1, 1]."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    r = (np.indices((size, size)) - (size - 1) / 2) / (size * 450 / 1024)
    yy, xx = r
    disk = np.hypot(xx, yy) <= 0.98
    xs, ys = [], []
    for _ in range(n):
        field = 20.0 * rng.standard_normal((size, size))
        for _ in range(4):
            rad, phi = 0.7 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            cx, cy = rad * np.cos(phi), rad * np.sin(phi)
            sep, width = rng.uniform(0.08, 0.16), rng.uniform(0.03, 0.06)
            amp = rng.uniform(800, 2500) * np.sign(cy + 1e-9)
            for dx, sgn in ((-sep / 2, 1.0), (sep / 2, -1.0)):
                field += sgn * amp * np.exp(-((xx - cx - dx) ** 2 + (yy - cy) ** 2) / (2 * width**2))
        field[~disk] = 0.0
        euv = np.stack([2 * np.tanh(np.abs(field) / 1000) - 0.9,
                        2 * np.tanh(gaussian_filter(np.abs(field), 2.0) / 500) - 0.9,
                        0.5 * np.tanh(field / 1500)])
        euv[:, ~disk] = -1.0
        xs.append(np.clip(euv, -1, 1))
        ys.append(np.clip(field / 3000, -1, 1)[None])
    return (torch.tensor(np.array(xs), dtype=torch.float32),
            torch.tensor(np.array(ys), dtype=torch.float32), torch.from_numpy(disk))


def binned_cc(pred, truth, mask, bin_px=8) -> float:
    """Pearson CC over on-disk pixels after bin_px x bin_px binning (mean of each block)."""
    pool = torch.nn.functional.avg_pool2d
    p, t = pool(pred.float(), bin_px), pool(truth.float(), bin_px)
    m = pool(mask[None, None].float(), bin_px)[0, 0] > 0.999
    p, t = p[:, 0][:, m].flatten(), t[:, 0][:, m].flatten()
    p, t = p - p.mean(), t - t.mean()
    return float((p * t).sum() / (p.norm() * t.norm() + 1e-12))


def learning_run(cfg: TrainConfig, data, device, samples: int, workdir) -> dict:
    """Train from one seed on one sample stream; CC of G against held-out truth after."""
    x_train, y_train, x_test, y_test, mask = data
    trainer = make_trainer(cfg, device, workdir)
    order = torch.randint(0, x_train.shape[0], (samples,),
                          generator=torch.Generator().manual_seed(cfg.seed))
    t0 = time.perf_counter()
    for i in range(0, samples - cfg.batch_size + 1, cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        trainer.train_step({"input": x_train[idx].to(device), "target": y_train[idx].to(device)},
                           sync=False)
    sync(device)
    elapsed = time.perf_counter() - t0
    G = trainer.G
    x = x_test.to(device)
    precision = "bf16" if trainer.autocast_dtype is torch.bfloat16 else "fp32"
    pred = torch.cat([GeneratorRunner(G, device, precision)(x[i:i + 4]).cpu()
                      for i in range(0, x.shape[0], 4)])
    return {"variant": label(cfg) + ("" if cfg.lr == 2e-4 else f" lr={cfg.lr:.2g}"),
            "samples": samples, "cc_binned": binned_cc(pred.clamp(-1, 1), y_test, mask),
            "train_s": elapsed, "bf16_vs_fp32_rel_diff_trained": bf16_vs_fp32_maps(G, x[:4])}


# ----------------------------------------------------------------------------- DDP scaling

def bench_ddp(cfg: TrainConfig, size, iters, warmup, workdir) -> dict | None:
    """Per-rank step time of the product step under DDP (launched by torchrun)."""
    from farside_gan.training import distributed as fd
    trainer = make_trainer(cfg, "auto", workdir)
    ctx, device = trainer.dist, trainer.device
    data = random_items(3, cfg.batch_size, size, device, seed=ctx.rank)
    for i in range(warmup):
        trainer.train_step(data[i % 3], sync=False)
    sync(device)
    counter = iter(range(10**9))
    ms = timed_ms(lambda: trainer.train_step(data[next(counter) % 3], sync=False), device, iters)
    ms_all = fd.all_reduce_mean(ms, ctx).item()
    world = ctx.world_size
    fd.destroy_distributed()
    if not ctx.is_main:
        return None
    return {"world_size": world, "batch_per_rank": cfg.batch_size, "ms_per_step": ms_all,
            "samples_per_s": world * cfg.batch_size * 1e3 / ms_all, "variant": label(cfg)}


# ----------------------------------------------------------------------------- report

def fmt_row(cells, widths):
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))


def print_table(r: dict) -> None:
    lines = [f"farside-gan GPU benchmark  device={r['device']}  torch={r['torch']}  "
             f"size={r['size']}  date={r['date']}"]
    c = r["ceilings"]
    lines.append(f"ceilings: matmul {c['matmul_tflops']:.0f} TFLOP/s ({c['matmul_dtype']}), "
                 f"copy {c['copy_tbps']:.2f} TB/s; floor (FLOP / matmul rate): train "
                 f"{r['floor_train_ms']:.2f} ms/sample, infer {r['floor_infer_ms']:.3f} ms/map")
    w = (70, 9, 10, 10, 9)
    if "train_seed" in r:
        lines.append(fmt_row(("training step (G+D)", "ms/step", "samples/s", "ms/sample",
                              "peak GiB"), w))
        for key in ("train_seed", "train_ours"):
            t = r[key]
            lines.append(fmt_row((f"{key[6:]:4s} {t['variant']}", f"{t['ms_per_step']:.2f}",
                                  f"{t['samples_per_s']:.2f}", f"{t['ms_per_sample']:.2f}",
                                  f"{t['peak_gib']:.2f}"), w))
        lines.append(f"training speed-up ours/seed: {r['train_speedup']:.2f}x")
    if "infer_seed" in r:
        lines.append(fmt_row(("generator inference", "ms/batch", "ms/map", "", "peak GiB"), w))
        for key in ("infer_seed", "infer_ours"):
            t = r[key]
            lines.append(fmt_row((f"{key[6:]:4s} {t['variant']}", f"{t['ms_per_batch']:.2f}",
                                  f"{t['ms_per_map']:.3f}", "", f"{t['peak_gib']:.2f}"), w))
        lines.append(f"inference speed-up ours/seed: {r['infer_speedup']:.2f}x; bf16 vs fp32 "
                     f"maps (init weights): rel diff {r['bf16_rel_diff']:.2e}"
                     + (f" eager, {r['gemm_compiled_rel_diff']:.2e} compiled with GEMM convs"
                        if "gemm_compiled_rel_diff" in r else ""))
    if r.get("loader"):
        ld = r["loader"]
        lines.append(f"data loader on {ld['loader_files']} FITS pairs in {ld['loader_dir']} ({ld['item_ms']:.1f} ms to "
                     f"read one, {ld['read_into_ms']:.1f} ms into batch rows once seen): alone "
                     f"{ld['processes_samples_per_s']:.1f} samples/s with "
                     f"{ld['loader_workers']} DataLoader workers, {ld['threads_samples_per_s']:.1f} "
                     f"with reader threads ({ld['threads_path']}), "
                     f"{ld['threads_collate_samples_per_s']:.1f} with reader threads + collate")
        lines.append(f"training fed by the loader ({ld['fed_variant']}): "
                     f"{ld['fed_train_samples_per_s']:.2f} samples/s"
                     + "".join(f"; {n} threads {v:.2f}" for n, v in ld.get("fed_by_threads", {}).items()))
    for s in r.get("sweep", []):
        if "ms_per_map" in s:
            lines.append(fmt_row((f"sweep infer {s['variant']}", f"{s['ms_per_batch']:.2f}",
                                  f"{s['ms_per_map']:.3f}", "", f"{s['peak_gib']:.2f}"), w))
        else:
            lines.append(fmt_row((f"sweep train {s['variant']}", f"{s['ms_per_step']:.2f}",
                                  f"{s['samples_per_s']:.2f}", f"{s['ms_per_sample']:.2f}",
                                  f"{s['peak_gib']:.2f}"), w))
    for s in r.get("learning", []):
        lines.append(f"learning {s['variant']} seed {s.get('seed', 0)}: {s['samples']} samples, CC(8x8 binned) "
                     f"{s['cc_binned']:.3f}, bf16-vs-fp32 maps {s['bf16_vs_fp32_rel_diff_trained']:.2e}, "
                     f"{s['train_s']:.1f} s")
    if "learning_untrained_cc" in r:
        lines.append(f"learning untrained generator: CC(8x8 binned) {r['learning_untrained_cc']:.3f}")
    print("\n".join(lines), flush=True)


PARTS = ("train", "infer", "loader", "sweep", "compile", "learning", "profile")
DEFAULT_PARTS = "train,infer,loader"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="CPU smoke size: 64 px, tiny model")
    p.add_argument("--parts", default=DEFAULT_PARTS,
                   help=f"comma-separated subset of {','.join(PARTS)} (default {DEFAULT_PARTS})")
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--batch", type=int, default=OURS["batch_size"], help="our training batch")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="TrainConfig setting for ours (e.g. compile=false)")
    p.add_argument("--infer-batch", type=int, default=8)
    p.add_argument("--infer-compile", action="store_true", help="torch.compile the generator")
    p.add_argument("--infer-channels-last", action="store_true")
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--loader-workers", type=int, default=None)
    p.add_argument("--loader-files", type=int, default=None)
    p.add_argument("--loader-fed-threads", default="", help="comma list: also time training fed "
                   "by this many reader threads")
    p.add_argument("--loader-dir", default=None, help="where to write the FITS pairs (default: TMPDIR)")
    p.add_argument("--learning-size", type=int, default=128)
    p.add_argument("--learning-samples", type=int, default=1600)
    p.add_argument("--learning-runs", default="seed,b1,ours,ours_sqrt_lr",
                   help="comma list of seed, b1, ours, ours_sqrt_lr, ours_lr4, ours_x2, ours_x4")
    p.add_argument("--learning-seeds", default="0", help="comma list of training seeds per run")
    p.add_argument("--ddp", action="store_true", help="DDP scaling (run under torchrun)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    parts = set(a.parts.split(","))
    if parts - set(PARTS):
        p.error(f"unknown parts {sorted(parts - set(PARTS))}; choose from {PARTS}")

    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if a.device == "auto" else a.device))
    tiny = a.tiny or device.type == "cpu"
    shape = TINY_SHAPE if tiny else DEFAULT_SHAPE
    size = a.size or (64 if tiny else 1024)
    iters = a.iters or (2 if tiny else 10)
    warmup = a.warmup or (2 if tiny else 5)
    ib = min(a.infer_batch, 2) if tiny else a.infer_batch
    ours = config_for(shape).with_overrides([f"batch_size={min(a.batch, 2) if tiny else a.batch}",
                                             *a.set])
    workdir = Path(tempfile.mkdtemp(prefix="bench_gpu_"))

    if a.ddp:
        res = bench_ddp(ours, size, iters, warmup, workdir)
        if res:
            print(json.dumps(res), flush=True)
            if a.json:
                a.json.write_text(json.dumps(res, indent=1))
        return 0

    scale = (size / 1024) ** 2
    r = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
         "torch": torch.__version__, "size": size, "tiny": tiny, "parts": sorted(parts),
         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": {k: getattr(ours, k) for k in SHAPE_KEYS}}
    r["ceilings"] = ceilings(device)
    rate = r["ceilings"]["matmul_tflops"] * 1e12
    r["floor_train_ms"] = TRAIN_TFLOP_1024 * scale * 1e12 / rate * 1e3
    r["floor_infer_ms"] = INFER_TFLOP_1024 * scale * 1e12 / rate * 1e3
    print(f"ceilings {r['ceilings']}", flush=True)

    def save():
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(r, indent=1, default=str))

    def train(cfg, **kw):
        res = bench_train(cfg, size, device, iters, warmup, workdir, **kw)
        print("train", {k: v for k, v in res.items() if k != "profile"}, flush=True)
        if "profile" in res:
            print(res["profile"], flush=True)
        return res

    def infer(*args, **kw):
        res = bench_infer(*args, shape, size, device, iters * 2, warmup, **kw)
        print("infer", {k: v for k, v in res.items() if k != "profile"}, flush=True)
        if "profile" in res:
            print(res["profile"], flush=True)
        return res

    kept = []
    if "train" in parts:
        r["train_seed"] = train(config_for(shape, **SEED))
        r["train_ours"] = train(ours, profile="profile" in parts, keep=kept)
        r["train_speedup"] = r["train_ours"]["samples_per_s"] / r["train_seed"]["samples_per_s"]
        save()
    if "infer" in parts:
        torch.backends.cudnn.benchmark = False  # the reference implementation's default
        r["infer_seed"] = infer(1, "fp32", False)
        torch.backends.cudnn.benchmark = True
        r["infer_ours"] = infer(ib, "auto", a.infer_channels_last, compile=a.infer_compile,
                                profile="profile" in parts)
        r["infer_speedup"] = r["infer_seed"]["ms_per_map"] / r["infer_ours"]["ms_per_map"]
        x = random_batches(1, 2, size, device, seed=3)[0][0]
        r["bf16_rel_diff"] = bf16_vs_fp32_maps(build_generator(shape, device), x)
        if a.infer_compile and device.type == "cuda":
            r["gemm_compiled_rel_diff"] = bf16_vs_fp32_maps(build_generator(shape, device), x,
                                                            compile=True)
        save()

    sweep = r.setdefault("sweep", [])
    if "sweep" in parts:  # eager variants, each option added in turn
        eager = dict(compile=False)
        for settings in (dict(SEED, mixed_precision="bf16"),
                         dict(eager, batch_size=8)):
            if tiny:
                settings = dict(settings, batch_size=min(settings["batch_size"], 2))
            sweep.append(train(config_for(shape, **settings)))
            save()
        for b, prec, cl in ((8, "fp32", False), (8, "auto", False)):
            sweep.append(infer(min(b, 2) if tiny else b, prec, cl))
        save()
    if "compile" in parts:  # compiled variants not already measured as ours
        t0 = time.perf_counter()
        for cl, gemm in ((False, True), (True, True), (False, False)):
            if (cl, True, gemm) != (a.infer_channels_last, a.infer_compile, True):
                sweep.append(infer(ib, "auto", cl, compile=True, gemm_convs=gemm))
                save()
        other = "false" if ours.channels_last else "true"
        sweep.append(train(ours.with_overrides([f"channels_last={other}"])))
        sweep.append(train(ours.with_overrides([f"gemm_convs={not ours.gemm_convs}"])))
        print(f"compile part {time.perf_counter() - t0:.0f} s", flush=True)
        save()

    if "loader" in parts:
        workers = a.loader_workers if a.loader_workers is not None else (0 if tiny else 8)
        n_files = a.loader_files or (4 if tiny else 48)
        trainer = kept[0] if kept else make_trainer(ours, device, workdir)
        fed = [int(n) for n in a.loader_fed_threads.split(",") if n]
        r["loader"] = bench_loader(size, device, trainer, workers, n_files,
                                   seconds=1.0 if tiny else 8.0, where=a.loader_dir, fed_threads=fed)
        print("loader", r["loader"], flush=True)
        save()

    if "learning" in parts:  # bf16 vs fp32, batch 1 vs ours, on synthetic pairs
        n_train, n_test = (8, 4) if tiny else (64, 16)
        ls = 64 if tiny else a.learning_size
        x, y, mask = toy_sun_pairs(n_train + n_test, ls, seed=0)
        data = (x[:n_train], y[:n_train], x[n_train:], y[n_train:], mask)
        samples = 8 if tiny else a.learning_samples
        B = ours.batch_size
        eager = ["compile=false"]
        sqrt_lr = f"lr={2e-4 * math.sqrt(B)}"
        runs = {"seed": (config_for(shape, **SEED), 1),
                "b1": (config_for(shape, batch_size=1, compile=False), 1),
                "ours": (ours.with_overrides(eager), 1),
                "ours_sqrt_lr": (ours.with_overrides(eager + [sqrt_lr]), 1),
                "ours_lr4": (ours.with_overrides(eager + [f"lr={8e-4}"]), 1),
                "ours_x2": (ours.with_overrides(eager + [sqrt_lr]), 2),
                "ours_x4": (ours.with_overrides(eager + [sqrt_lr]), 4)}
        r["learning"] = []
        for name in a.learning_runs.split(","):
            cfg, times = runs[name]
            for seed in a.learning_seeds.split(","):
                run = learning_run(cfg.with_overrides([f"seed={seed}"]), data, device,
                                   samples * times, workdir)
                r["learning"].append(dict(run, run=name, seed=int(seed)))
                print("learning", r["learning"][-1], flush=True)
                save()
        G0 = build_generator(shape, device)
        pred = GeneratorRunner(G0, device, "fp32")(x[n_train:].to(device)).cpu()
        r["learning_untrained_cc"] = binned_cc(pred.clamp(-1, 1), y[n_train:], mask)
        save()

    print_table(r)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
