# Stage: report. Tables from every result file, figures from the tables, then
# results/report.html (one self-contained page). Tables and figures are also
# wrapped in report() so that `snakemake --report results/report.zip` works.


report: "../report/workflow.rst"


rule aggregate:
    input:
        metrics=sae_metrics(),
        probes=probe_results(),
        disentangle=disentangle_results(),
    output:
        csv=report_table_outputs(),
        md=report_tables("md"),
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
        "../workflow_scripts/aggregate.py"


rule figures:
    input:
        tables=report_tables("csv"),
        importance=disentangle_importances(),
    output:
        png=report_figure_outputs(),
        pdf=report_figures("pdf"),
        captions="results/figures/captions.json",
    params:
        synthetic=SYNTHETIC,
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
        "../workflow_scripts/figures.py"


rule report:
    input:
        tables=report_tables("csv"),
        figures=report_figures("png"),
        captions="results/figures/captions.json",
        manifest="results/data/manifest.csv",
        stores=embedding_stores(),
    output:
        html=report(
            "results/report.html",
            caption="../report/report_html.rst",
            category="Report",
            labels={"file": "report.html"},
        ),
        claims="results/claims.json",
    params:
        config_yaml=get_config_yaml(),
        benchmarks="results/benchmarks/rules",
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
