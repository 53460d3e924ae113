"""Glue for rule frame_llds: eGeMAPS low-level descriptors over time of the test clips."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging  # noqa: E402

from audiosae.data.manifest import read_manifest  # noqa: E402
from audiosae.frames.acoustics import compute_llds  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

logging.basicConfig(stream=sys.stderr, level=logging.INFO)
manifest = read_manifest(snakemake.input.manifest)
rows = compute_llds(manifest, snakemake.output[0], splits=snakemake.params.splits, workers=snakemake.threads)
print(f"{rows} LLD frames of {int(manifest['split'].isin(snakemake.params.splits).sum())} clips", file=sys.stderr)
