# Prepare: one job per instrument and period runs calibrate -> align -> normalize (-> stack the
# three EUV channels) on every frame the fetch found usable, in one process with `threads`
# workers. A time whose frame fails a stage is recorded as dropped (stage, reason) and the
# others go on. Output: data/prepared/<instrument>/<period>/ with records.json,
# aligned/<channel>/<time>.fits (physical units), stacks/<time>.fits (EUV, [-1, 1]) or
# targets/<time>.fits (HMI, [-1, 1]).
#
# Redo one period:  snakemake -f data/prepared/aia/201101 ...
# Redo one frame:   farside-gan prepare ... --time 20110105T1200 (the others are kept)


rule prepare:
    input:
        unpack(prepare_inputs),
    output:
        directory("data/prepared/{instrument}/{period}"),
    log:
        "logs/prepare/{instrument}/{period}.log",
    benchmark:
        "benchmarks/out/prepare/{instrument}/{period}.tsv"
    params:
        calibration=lambda wildcards, input: (
            f"--calibration-dir {quoted(input.calibration)}" if "calibration" in input.keys()
            else ""),
        size=config["image"]["size"],
        rsun_px=config["image"]["rsun_px"],
        mask_radius=config["image"]["mask_radius"],
        fill=config["image"]["fill"],
        euv_median=config["normalize"]["euv_median"],
        euv_clip=config["normalize"]["euv_clip"],
        hmi_clip=config["normalize"]["hmi_clip"],
    threads: 4
    resources:
        mem_mb=lambda wildcards, threads: 2000 + 1500 * threads,
        runtime=120,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan prepare --instrument {wildcards.instrument}"
        " --fetch-index {input.index:q} --out-dir {output:q} {params.calibration}"
        " --size {params.size:q} --rsun-px {params.rsun_px:q} --mask-radius {params.mask_radius:q}"
        " --fill {params.fill:q} --euv-median {params.euv_median:q}"
        " --euv-clip {params.euv_clip[0]:q} {params.euv_clip[1]:q} --hmi-clip {params.hmi_clip:q}"
        " --workers {threads} > {log:q} 2>&1"
