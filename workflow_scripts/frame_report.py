"""Glue for rule frame_report (transitional: the generic report_section.py replaces it)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.report.registry import run_section  # noqa: E402

inputs = {k: [v] if isinstance(v, str) else list(v) for k, v in snakemake.input.items()}
outputs = {k: [v] if isinstance(v, str) else list(v) for k, v in snakemake.output.items()}
for line in run_section("frames", inputs, dict(snakemake.params.items()), outputs):
    print(line, file=sys.stderr)
