"""Glue for rule controls_report: the controls section's tables, figures and captions."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path  # noqa: E402

from audiosae.controls.report import build_tables, make_figures  # noqa: E402
from audiosae.report._io import write_captions  # noqa: E402
from audiosae.report.aggregate import write_table  # noqa: E402

p = snakemake.params
tables = build_tables(snakemake.input.stability, snakemake.input.sparse, resamples=p.bootstrap, ci=p.ci,
                      seed=p.bootstrap_seed)
for path in snakemake.output.csv:
    name = Path(path).stem
    write_table(Path(path).parent, name, tables[name])
    print(f"{path}: {len(tables[name])} rows", file=sys.stderr)
names = [Path(x).stem for x in snakemake.output.png]
if names:
    figures_dir = Path(snakemake.output.pdf[0]).parent
    captions = make_figures(tables, figures_dir, names)
    write_captions(figures_dir, "controls", captions)
    for name, caption in captions.items():
        print(f"{name}: {caption}", file=sys.stderr)
