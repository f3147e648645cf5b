# Download: one checkpoint job per instrument and period (fetch.batch: month, day or time), which
# fetches every channel and time of the period. The set of usable frames is known only after
# each frame has been fetched and quality-checked, hence `checkpoint`; dropped frames keep a
# record.json saying why.


rule synth_archive:
    output:
        directory("data/archive"),
    log:
        "logs/synth_archive.log",
    params:
        span=synthetic_span(),
        cadence=config["synthetic"]["cadence"],
        instruments=",".join(["aia", "hmi"] + [SPACECRAFT[sc] for sc in FARSIDE_TIMES]),
        size=config["synthetic"]["size"],
        euvi_size=config["synthetic"]["euvi_size"],
        seed=config["synthetic"]["seed"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan synth-archive {output} --start {params.span[0]} --end {params.span[1]}"
        " --cadence {params.cadence} --instruments {params.instruments} --size {params.size}"
        " --euvi-size {params.euvi_size} --seed {params.seed} > {log} 2>&1"


rule calibration_tables:
    output:
        directory("data/calibration"),
    log:
        "logs/calibration_tables.log",
    params:
        offline="--offline-demo" if config["synthetic"]["enabled"] else "",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/farside-gan.yaml"
    shell:
        "python -m farside_gan calibration-tables {output} {params.offline} > {log} 2>&1"


checkpoint fetch:
    input:
        archive=archive_input,
    output:
        directory("data/raw/{instrument}/{period}"),
    log:
        "logs/fetch/{instrument}/{period}.log",
    benchmark:
        "benchmarks/out/fetch/{instrument}/{period}.tsv"
    params:
        commands=fetch_commands,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
        downloads=1,  # cap parallel download jobs with --resources downloads=N
    conda:
        "../../envs/farside-gan.yaml"
    script:
        # one process for the whole batch: fetch writes <channel>/<time>/record.json (+ frame.fits)
        "../scripts/farside_gan_cli.py"
