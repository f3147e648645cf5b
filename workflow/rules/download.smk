# Download: one job per instrument and period (fetch.batch: month, day or time) fetches every
# channel and time of the period. Each frame gets <channel>/<time>/record.json (ok, or dropped
# with the reason) and frame.fits when usable; the period's records.json gathers them for
# `prepare`. Only the index is the job's output: the frames stay when a rerun (a changed time
# grid) redoes the period.


rule synth_archive:
    output:
        directory("data/archive"),
    log:
        "logs/synth_archive.log",
    params:
        # what the archive holds: compared by Snakemake, so a change reruns the job
        holds=synthetic_archive_spec(),
        # each instrument at the times the workflow asks for (AIA and HMI, each STEREO)
        groups=synthetic_archive_groups,
        size=quoted(config["synthetic"]["size"]),
        euvi_size=quoted(config["synthetic"]["euvi_size"]),
        seed=quoted(config["synthetic"]["seed"]),
    threads: local_cores(default=2)
    resources:
        mem_mb=lambda wildcards, threads: 2000 + 1000 * threads,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan synth-archive {output:q} {params.groups} --size {params.size}"
        " --euvi-size {params.euvi_size} --seed {params.seed} --workers {threads} > {log:q} 2>&1"


rule calibration_tables:
    output:
        directory("data/calibration"),
    log:
        "logs/calibration_tables.log",
    params:
        offline="--offline-demo" if SYNTHETIC else "",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "python -m farside_gan calibration-tables {output} {params.offline} > {log} 2>&1"


rule fetch:
    input:
        archive=archive_input,
    output:
        "data/raw/{instrument}/{period}/records.json",
    log:
        "logs/fetch/{instrument}/{period}.log",
    benchmark:
        "benchmarks/out/fetch/{instrument}/{period}.tsv"
    params:
        # what is fetched: a changed grid, source or tolerance reruns the period (the frames it
        # has are kept); compared by Snakemake
        request=fetch_request,
        source=lambda wildcards: quoted(fetch_source(config, wildcards.instrument)),
        times=fetch_times,
        tolerance=quoted(config["fetch"]["tolerance"]),
        out_dir=lambda wildcards, output: quoted(Path(output[0]).parent),
        connections=quoted(config["fetch"]["connections"]),
        file_deadline=quoted(config["fetch"]["file_deadline"]),
        retries=quoted(config["fetch"]["retries"]),
        access=fetch_access,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
        downloads=1,  # cap parallel download jobs with --resources downloads=N
    conda:
        CONDA_ENV
    shell:
        # one process for every channel and time of the period: fetch writes
        # <channel>/<time>/record.json (+ frame.fits), then the period's index
        "python -m farside_gan fetch-period --source {params.source}"
        " --instrument {wildcards.instrument} --times {params.times}"
        " --tolerance {params.tolerance} --out-dir {params.out_dir} --index {output:q}"
        " --connections {params.connections} --file-deadline {params.file_deadline}"
        " --retries {params.retries} {params.access} > {log:q} 2>&1"
