import sys; sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: E702

from pathlib import Path

from audiosae.report.aggregate import write_tables

out_dir = Path(snakemake.output.csv[0]).parent
p = snakemake.params
tables = write_tables(snakemake.input.metrics, snakemake.input.probes, snakemake.input.disentangle, out_dir,
                      bootstrap=p.bootstrap, ci=p.ci, seed=p.bootstrap_seed)
for name, df in tables.items():
    print(f"{out_dir / name}.csv: {len(df)} rows", file=sys.stderr)
