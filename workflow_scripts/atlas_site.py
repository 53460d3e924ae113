"""Glue for rule atlas_site: the atlas as one folder for `snakemake --report` (every clip once)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.atlas.site import build_site  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

rows = build_site(snakemake.input.atlas, snakemake.input.clips, snakemake.output[0])
print(f"{len(rows)} pages linked in {snakemake.output[0]}", file=sys.stderr)
