"""Glue for rule frame_report: the frames section's tables and figures."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path  # noqa: E402

from audiosae.frames.report import make_figures, write_tables  # noqa: E402
from audiosae.report.aggregate import read_tables  # noqa: E402

core = read_tables(Path(snakemake.input.core[0]).parent, [Path(p).stem for p in snakemake.input.core])
atlas = None
atlas_tables = [p for p in getattr(snakemake.input, "atlas", []) or [] if Path(p).stem == "interpretable"]
if atlas_tables:
    atlas = read_tables(Path(atlas_tables[0]).parent, ["interpretable"])["interpretable"]
tables = write_tables(snakemake.input.acoustics, core, Path(snakemake.output.csv[0]).parent, atlas,
                      target=snakemake.params.target)
for name, df in tables.items():
    print(f"{name}: {len(df)} rows", file=sys.stderr)
captions = make_figures(tables, Path(snakemake.output.png[0]).parent)
for name, caption in captions.items():
    print(f"{name}: {caption}", file=sys.stderr)
