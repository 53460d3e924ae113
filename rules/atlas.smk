# Stage: atlas. What every unit encodes: per (model, layer, rep), statistics over
# all clips (units.csv, summary.json) and a page with a card per live unit
# (index.html), whose audio players and spectrograms link the files written once
# per clip by atlas_clips.


rule atlas_clips:
    input:
        manifest="results/data/manifest.csv",
        corpus=get_corpus_root(),
    output:
        directory("results/atlas/clips"),
    params:
        audio=get_audio_params,
    threads: 4  # Vorbis encoding releases the GIL; threads share the clips
    resources:
        mem_mb=2000,
        runtime=60,
    log:
        "results/logs/atlas_clips.log",
    benchmark:
        "results/benchmarks/rules/atlas_clips.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/atlas_clips.py"


rule atlas:
    input:
        store=get_atlas_store,
        manifest="results/data/manifest.csv",
        attributes="results/data/attributes.parquet",
        clips="results/atlas/clips",
    output:
        report(
            directory("results/atlas/{model}/layer{layer}/{rep}"),
            htmlindex="index.html",
            caption="../report/atlas.rst",
            category="Atlas",
            subcategory="{model} layer {layer}",
            labels={"model": "{model}", "layer": "{layer}", "rep": "{rep}"},
        ),
    params:
        array=get_rep_array,
        atlas=get_atlas_params,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "results/logs/atlas/{model}/layer{layer}/{rep}.log",
    benchmark:
        "results/benchmarks/rules/atlas/{model}/layer{layer}/{rep}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/atlas.py"


rule atlas_report:
    input:
        atlas=atlas_dirs(),
        ablation=[],
    output:
        csv=[f"results/tables/{t}.csv" for t in ATLAS_TABLES],
        md=[f"results/tables/{t}.md" for t in ATLAS_TABLES],
        png=[f"results/figures/{f}.png" for f in atlas_figure_names()],
        pdf=[f"results/figures/{f}.pdf" for f in atlas_figure_names()],
        captions="results/figures/captions/atlas.json",
    log:
        "results/logs/atlas_report.log",
    benchmark:
        "results/benchmarks/rules/atlas_report.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/atlas_report.py"
