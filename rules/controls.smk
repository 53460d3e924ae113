# Stage: controls (docs/controls.md). The random-weights twins need no rule here: a twin
# <name>_random is an ordinary model of every stage. Here: per node, the seed
# stability of its SAEs (controls.seeds) and k-sparse probing of its layer and clip
# SAEs (controls.sparse_probing); then the section's tables, figures and claim.

include: "inputs/controls.smk"


rule stability:
    input:
        saes=get_stability_inputs,
        manifest=layout.MANIFEST,
        attributes=layout.ATTRIBUTES,
    output:
        layout.STABILITY,
    params:
        groups=get_stability_groups,
        default_seed=config["sae"]["seed"],
        threshold=CONTROLS["stability_threshold"],
        atlas={k: config["atlas"][k] for k in ("auroc_threshold", "rho_threshold")},
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "results/logs/stability/{model}/layer{layer}.log",
    benchmark:
        "results/benchmarks/rules/stability/{model}/layer{layer}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/stability.py"


rule sparse_probe:
    input:
        stores=lambda w: list(get_sparse_probe_stores(w).values()),
        manifest=layout.MANIFEST,
    output:
        layout.SPARSE_PROBE,
    params:
        stores=get_sparse_probe_stores,
        targets=[{"label": t["label"], "split": t["split"]} for t in config["probe"]["targets"]],
        split={k: config["data"][k] for k in ("valid_fraction", "test_fraction", "split_seed")},
        ks=CONTROLS["sparse_probe_ks"],
        bootstrap=config["probe"]["bootstrap"],
        ci=config["probe"]["ci"],
        bootstrap_seed=config["probe"]["bootstrap_seed"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "results/logs/sparse_probe/{model}/layer{layer}.log",
    benchmark:
        "results/benchmarks/rules/sparse_probe/{model}/layer{layer}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/sparse_probe.py"


# The controls section of the report (audiosae.report.registry.CONTROLS): with any control on.
if "controls" in REPORT_SECTIONS:

    localrules:
        controls_report,

    rule controls_report:
        input:
            stability=stability_results,
            sparse=sparse_probe_results,
        output:
            csv=section_table_outputs("controls"),
            md=section_tables("controls", "md"),
            png=section_figure_outputs("controls"),
            pdf=section_figures("controls", "pdf"),
            captions=section_captions("controls"),
        params:
            section="controls",
            bootstrap=config["probe"]["bootstrap"],
            ci=config["probe"]["ci"],
            bootstrap_seed=config["probe"]["bootstrap_seed"],
        log:
            "results/logs/controls_report.log",
        benchmark:
            "results/benchmarks/rules/controls_report.tsv"
        conda:
            "../envs/report.yaml"
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../workflow_scripts/report_section.py"
