# Dataset: every training time (ok or dropped, with the stage and reason), AIA/HMI pairs, and
# the seeded train/eval split by month, from the prepared AIA and HMI periods.


rule manifest:
    input:
        prepared=prepared_dirs(TRAINING_INPUT) + prepared_dirs(TRAINING_TARGET),
    output:
        "data/manifest.csv",
    log:
        "logs/manifest.log",
    params:
        # compared by Snakemake: a changed pairing or split reruns it
        pair_tolerance=quoted(config["dataset"]["pair_tolerance"]),
        seed=quoted(config["dataset"]["seed"]),
        eval_months=quoted(config["dataset"]["eval_months"]),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan manifest --out {output:q} --prepared {input.prepared:q}"
        " --pair-tolerance {params.pair_tolerance} --seed {params.seed}"
        " --eval-months {params.eval_months} > {log:q} 2>&1"
