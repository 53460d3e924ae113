# Stage: report. The paper's tables from every result file (aggregate), their
# figures (figures), then results/report.html (one self-contained page) from the
# tables, figures and explore pages of every section registered in
# audiosae.report.registry. Tables and figures are also wrapped in report() so
# that `snakemake --report results/report.zip` works.

include: "inputs/report.smk"


report: "../report/workflow.rst"


# Seconds of pandas and matplotlib over files already written: on a cluster they run on the submitting host,
# where they start at once, instead of waiting in the queue behind the study's compute jobs.
localrules:
    aggregate,
    figures,
    report,


rule aggregate:
    input:
        metrics=sae_metrics,
        probes=probe_results,
        disentangle=disentangle_results,
    output:
        csv=section_table_outputs("core"),
        md=section_tables("core", "md"),
    params:
        section="core",
        bootstrap=config["probe"]["bootstrap"],  # the paired intervals of SAE-minus-original accuracy
        ci=config["probe"]["ci"],
        bootstrap_seed=config["probe"]["bootstrap_seed"],
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/rules/aggregate.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/report_section.py"


rule figures:
    input:
        tables=section_tables("core", "csv"),
        importance=disentangle_importances,
    output:
        png=section_figure_outputs("core"),
        pdf=section_figures("core", "pdf"),
        captions=section_captions("core"),
    params:
        section="core",
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/rules/figures.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=3000,
        runtime=15,
    script:
        "../workflow_scripts/report_section.py"


rule report:
    input:
        tables=section_tables(None, "csv"),
        figures=section_figures(None, "png"),
        captions=section_captions(),
        pages=report_page_files,
        manifest=layout.MANIFEST,
        stores=[layout.EMBEDDINGS.format(model=m) for m in MODELS],
    output:
        html=report(
            layout.REPORT_HTML,
            caption="../report/report_html.rst",
            category="Report",
            labels={"file": "report.html"},
        ),
        claims=layout.CLAIMS,
    params:
        config_yaml=get_config_yaml(),
        pages=report_pages,
        benchmarks=layout.BENCHMARKS,
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/rules/report.tsv"
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/report.py"
