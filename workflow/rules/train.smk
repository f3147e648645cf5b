# Train the Pix2PixHD GAN on the manifest's training split. One GPU: plain process; more than
# one (training.gpus > 1): one process per GPU on one host (DDP); several hosts (training.nodes
# > 1, SLURM executor): one srun task per GPU on each host (common.smk: train_resources).
#
# Resumable: the outputs are only what the library writes atomically when training ends. The
# run's state (results/model/checkpoints/: latest.pt and the logs so far) is not an output, so
# Snakemake keeps it when the job fails, is killed or times out, and the rerun (a plain one,
# --rerun-incomplete, or the profile's retries) continues from the last checkpoint. The library
# starts over instead when the checkpoint ends a finished run (-R train) or its settings or
# training files differ from this run's.


rule train:
    input:
        manifest="data/manifest.csv",
    output:
        generator="results/model/generator.pt",
        losses=report("results/model/losses.csv", category="Training",
                      caption="../report/losses.rst"),
    log:
        "logs/train.log",
    benchmark:
        "benchmarks/out/train.tsv"
    params:
        out_dir=lambda wildcards, output: str(Path(output.generator).parent),
        launcher=train_launcher,
        settings=train_settings(),
        device=config["training"]["device"],
    threads: max(2, 4 * GPUS)
    resources:
        # the SLURM plugin asks for --gpus=<gpu> (model: set gpu_model in the profile), and for
        # several hosts --nodes, --ntasks and --ntasks-per-gpu
        **train_resources(),
        mem_mb=32000 if GPUS else 4000,
        runtime=2880 if GPUS else 120,
    conda:
        GPU_CONDA_ENV
    shell:
        "{params.launcher} train --manifest {input.manifest:q} --out-dir {params.out_dir:q}"
        " --device {params.device:q} {params.settings} > {log:q} 2>&1"
