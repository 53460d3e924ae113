# Stage: atlas. What every unit encodes: per (model, layer, rep), statistics over
# all clips (units.csv, summary.json) and a page with a card per live unit
# (index.html), whose audio players and spectrograms name the files written once
# per clip by atlas_clips (results/atlas/clips/) by relative path.

include: "inputs/atlas.smk"


localrules:
    atlas_report,  # tables and figures from the atlas's small summaries: seconds, on the submitting host
    atlas_site,  # links and copies


rule atlas_clips:
    input:
        manifest=layout.MANIFEST,
        corpus=get_corpus_root(),
    output:
        directory(layout.ATLAS_CLIPS),
    params:
        audio=get_audio_params,
    threads: 4  # Vorbis encoding releases the GIL; threads share the clips
    priority: 20  # every atlas job waits on it; a many-thread job otherwise starves among one-thread jobs
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
        manifest=layout.MANIFEST,
        attributes=layout.ATTRIBUTES,
        clips=layout.ATLAS_CLIPS,
        frames=get_atlas_frames,  # frame SAEs: frame store and weights, for activation traces
        stability=get_atlas_stability,  # SAEs with other seeds (controls.seeds): does each latent recur?
        causal=get_atlas_causal,  # the node's causal job (rules/causal.smk): each tested card's badge and line
    output:
        directory(layout.ATLAS),
    params:
        array=get_rep_array,
        rank_array=get_atlas_rank_array,
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


# Does zeroing a class's top latents remove that class? Per node, every clip-level SAE, ours and imported
# (sae.external, decoded by its format's reader): decode the test clips' codes with and without the ablation and
# classify with the original layer's probe of the study's primary target (audiosae.config.primary_target;
# audiosae.atlas.ablation).
rule ablation:
    input:
        saes=get_ablation_saes,
        probe_json=lambda w: layout.probe_path(PRIMARY_TARGET, w.model, w.layer, Rep(), "json"),
        probe_npz=lambda w: layout.probe_path(PRIMARY_TARGET, w.model, w.layer, Rep(), "npz"),
        manifest=layout.MANIFEST,
    output:
        layout.ABLATION,
    params:
        sae_dirs=get_ablation_sae_dirs,  # {rep: folder}: each SAE named, not paired with a rep by position
        external=get_ablation_external,  # {rep: {format, path}}: imported SAEs, decoded by interop.readers
        target=PRIMARY_TARGET,
        m=config["atlas"]["ablation_m"],
        draws=config["atlas"]["ablation_draws"],
        seed=config["atlas"]["seed"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "results/logs/ablation/{model}/layer{layer}.log",
    benchmark:
        "results/benchmarks/rules/ablation/{model}/layer{layer}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/ablation.py"


# Every page and every clip (once) in one folder, for `snakemake --report` (a page folder with
# its own audio would copy each clip once per page into the zip).
rule atlas_site:
    input:
        atlas=atlas_dirs,
        clips=layout.ATLAS_CLIPS,
    output:
        report(
            directory(layout.ATLAS_SITE),
            htmlindex="index.html",
            caption="../report/atlas.rst",
            category="Atlas",
            labels={"pages": "latent atlas"},
        ),
    log:
        "results/logs/atlas_site.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/atlas_site.py"


# The stage's tables, figures and captions, as registered in audiosae.report.registry (ATLAS).
rule atlas_report:
    input:
        atlas=atlas_dirs,
        ablation=ablation_results,
    output:
        csv=section_table_outputs("atlas"),
        md=section_tables("atlas", "md"),
        png=section_figure_outputs("atlas"),
        pdf=section_figures("atlas", "pdf"),
        captions=section_captions("atlas"),
    params:
        section="atlas",
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
        "../workflow_scripts/report_section.py"
