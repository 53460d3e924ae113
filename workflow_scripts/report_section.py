"""Glue for every report-section rule (aggregate, figures, atlas_report, frame_report, controls_report): the
section named in params builds its registered tables and draws its registered figures through the one contract
of audiosae.report.registry, and this script writes them (CSV + Markdown, PNG + PDF, captions JSON)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path  # noqa: E402

from audiosae.report.registry import run_section  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

inputs = {k: [v] if isinstance(v, str) else list(v) for k, v in snakemake.input.items()}
params = {k: v for k, v in snakemake.params.items() if k != "section"}
outputs = {k: [v] if isinstance(v, str) else list(v) for k, v in snakemake.output.items()}
for line in run_section(snakemake.params.section, inputs, params, outputs):
    print(line, file=sys.stderr)
