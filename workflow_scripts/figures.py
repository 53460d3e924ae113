import sys; sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: E702

from pathlib import Path

from audiosae.report.aggregate import read_tables
from audiosae.report.figures import make_figures

tables = read_tables(Path(snakemake.input.tables[0]).parent)
captions = make_figures(tables, snakemake.input.importance, Path(snakemake.output.png[0]).parent,
                        synthetic=snakemake.params.synthetic)
for name, caption in captions.items():
    print(f"{name}: {caption}", file=sys.stderr)
