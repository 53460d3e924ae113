import sys; sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: E702

from pathlib import Path

from audiosae.report._io import read_captions
from audiosae.report.aggregate import read_tables
from audiosae.report.claims import answer_claims
from audiosae.report.html import write_report
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting

tables_dir = Path(snakemake.input.tables[0]).parent
tables = read_tables(tables_dir, [Path(p).stem for p in snakemake.input.tables])
claims = answer_claims(tables)
for c in claims:
    print(f"claim {c.label} ({c.verdict}): {c.sentence}", file=sys.stderr)
write_report(
    snakemake.output.html,
    tables=tables,
    figures={Path(p).stem: p for p in snakemake.input.figures},
    captions=read_captions(snakemake.input.captions),
    claims=claims,
    config_yaml=snakemake.params.config_yaml,
    manifest=snakemake.input.manifest,
    stores=snakemake.input.stores,
    benchmarks_dir=snakemake.params.benchmarks,
    claims_json=snakemake.output.claims,
    pages=snakemake.params.pages,
)
