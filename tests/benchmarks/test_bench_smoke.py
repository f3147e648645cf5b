"""The GPU benchmark runs on the CPU at a tiny size and prints/writes every field of its table."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import REPO

BENCH = REPO / "benchmarks" / "bench_gpu.py"


def test_bench_gpu_tiny_cpu_run_reports_the_table(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--device", "cpu", "--parts", "train,infer,loader",
         "--iters", "1", "--warmup", "1", "--loader-dir", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(out.read_text())
    assert (r["device"], r["size"], r["tiny"]) == ("cpu", 64, True)
    assert r["model"] == {"ngf": 8, "n_downsample": 2, "n_residual": 1, "ndf": 8, "n_D": 2}
    # Floors are FLOP counts (scaled from 1024 px by pixel count) over the measured matmul rate.
    rate = r["ceilings"]["matmul_tflops"] * 1e12
    assert rate > 0 and r["ceilings"]["copy_tbps"] > 0
    assert abs(r["floor_train_ms"] - 2.5e12 * (64 / 1024) ** 2 / rate * 1e3) < 1e-6 * r["floor_train_ms"]
    seed, ours = r["train_seed"], r["train_ours"]
    assert (seed["batch"], ours["batch"]) == (1, 2)
    for t in (seed, ours):
        assert t["ms_per_step"] > 0
        assert abs(t["samples_per_s"] * t["ms_per_step"] - 1e3 * t["batch"]) < 1e-6 * 1e3 * t["batch"]
    assert abs(r["train_speedup"] - ours["samples_per_s"] / seed["samples_per_s"]) < 1e-9
    assert r["infer_seed"]["batch"] == 1 and r["infer_ours"]["batch"] == 2
    assert abs(r["infer_speedup"] - r["infer_seed"]["ms_per_map"] / r["infer_ours"]["ms_per_map"]) < 1e-9
    assert 1e-4 < r["bf16_rel_diff"] < 0.2  # bf16 rounds, but stays close to fp32
    ld = r["loader"]
    assert ld["loader_files"] == 4 and ld["loader_dir"] == str(tmp_path)
    for key in ("processes_samples_per_s", "threads_samples_per_s", "fed_train_samples_per_s"):
        assert ld[key] > 0, key
    table = done.stdout[done.stdout.index("farside-gan GPU benchmark"):]
    for text in ("ceilings: matmul", "floor (FLOP / matmul rate)", "seed b1 fp32",
                 "ours b2", "training speed-up ours/seed", "generator inference",
                 "inference speed-up ours/seed", "bf16 vs fp32 maps", "data loader on 4 FITS pairs",
                 "training fed by the loader"):
        assert text in table, text


def test_bench_convs_tiny_cpu_run_times_each_layer_both_ways(tmp_path):
    out = tmp_path / "convs.json"
    done = subprocess.run(
        [sys.executable, str(BENCH.with_name("bench_convs.py")), "--tiny", "--iters", "1",
         "--only", "G ", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    # The generator's two few-channel convs, each as cuDNN's conv and in its GEMM form.
    assert [(r["layer"], r["kind"]) for r in rows] == [
        ("G in 3->32 k7", "cudnn"), ("G in 3->32 k7", "gemm:im2col"),
        ("G out 32->1 k7", "cudnn"), ("G out 32->1 k7", "gemm:taps")]
    assert rows[0]["shape"] == [2, 3, 70, 70] and rows[2]["shape"] == [2, 32, 70, 70]
    assert all(r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0 for r in rows)
