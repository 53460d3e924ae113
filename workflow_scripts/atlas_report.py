"""Glue for rule atlas_report: the atlas stage's tables, figures and captions (registry section "atlas")."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path  # noqa: E402

from audiosae.atlas.figures import make_figures  # noqa: E402
from audiosae.atlas.report import build_tables  # noqa: E402
from audiosae.report._io import write_captions  # noqa: E402
from audiosae.report.aggregate import write_table  # noqa: E402

tables = build_tables(snakemake.input.atlas, snakemake.input.ablation)
for path in snakemake.output.csv:
    name = Path(path).stem
    write_table(Path(path).parent, name, tables[name])
    print(f"{path}: {len(tables[name])} rows", file=sys.stderr)
names = [Path(p).stem for p in snakemake.output.png]
figures_dir = Path(snakemake.output.pdf[0]).parent
captions = make_figures(tables, figures_dir, names)
write_captions(figures_dir, "atlas", captions)
for name, caption in captions.items():
    print(f"{name}: {caption}", file=sys.stderr)
