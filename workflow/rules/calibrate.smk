# Calibrate: level 1 -> level 1.5 corrections that are not geometric (AIA pointing, degradation,
# exposure; EUVI exposure; HMI NaN handling). Same pixel grid; temporary.


rule calibrate:
    input:
        raw=lambda wildcards: fetch_dir(wildcards.instrument, period_of(wildcards.time)),
        calibration="data/calibration",
    output:
        temp("data/calibrated/{instrument}/{channel}/{time}.fits"),
    log:
        "logs/calibrate/{instrument}/{channel}/{time}.log",
    group:
        "prepare"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan calibrate {input.raw}/{wildcards.channel}/{wildcards.time}/frame.fits {output}"
        " --calibration-dir {input.calibration} > {log} 2>&1"
