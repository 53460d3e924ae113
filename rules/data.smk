# Stage: data. The corpus (VocalSet from Zenodo, the synthetic stand-in, or the user's
# table or folder tree), the manifest of its clips with their splits, and the eGeMAPS
# attributes of every clip. A table or folder corpus is checked when the Snakefile loads.

include: "inputs/data.smk"


localrules:
    download_vocalset,


# The only rule that touches the network. The zip stays at data.vocalset.archive;
# on an offline machine, place it there by hand and this rule only checks and extracts it.
rule download_vocalset:
    output:
        directory("resources/VocalSet"),
    params:
        url=config["data"]["vocalset"]["url"],
        md5=config["data"]["vocalset"]["md5"],
        size=config["data"]["vocalset"]["size"],
        archive=config["data"]["vocalset"]["archive"],
    log:
        "results/logs/download_vocalset.log",
    cache: "omit-software"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/download_vocalset.py"


rule synthesize_corpus:
    output:
        directory("resources/synthetic"),
    params:
        seed=config["data"]["synthetic"]["seed"],
        singers=config["data"]["synthetic"]["singers"],
        clips_per_technique=config["data"]["synthetic"]["clips_per_technique"],
        duration_s=config["data"]["synthetic"]["duration_s"],
        techniques=config["data"]["synthetic"]["techniques"],
    log:
        "results/logs/synthesize_corpus.log",
    benchmark:
        "results/benchmarks/rules/synthesize_corpus.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/synthesize_corpus.py"


rule manifest:
    input:
        corpus=get_corpus_root(),
    output:
        manifest=layout.MANIFEST,
        skipped="results/data/skipped.csv",
    params:
        corpus=get_corpus_params(),
        on_bad_audio=config["data"]["on_bad_audio"],
    log:
        "results/logs/manifest.log",
    benchmark:
        "results/benchmarks/rules/manifest.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/manifest.py"


rule attributes:
    input:
        manifest=layout.MANIFEST,
        synthetic=get_synthetic_corpus(),
    output:
        layout.ATTRIBUTES,
    params:
        crop_seconds=config["audio"]["crop_seconds"],
        attributes_on=config["audio"]["attributes_on"],
    threads: 8
    # Every disentangle and atlas job waits on it: start it before the long extraction jobs, which would
    # otherwise take the cores first and keep them (a many-thread job starves among one-thread jobs).
    priority: 20
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "results/logs/attributes.log",
    benchmark:
        "results/benchmarks/rules/attributes.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/attributes.py"
