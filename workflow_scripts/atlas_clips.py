"""Glue for rule atlas_clips: every clip's crop-0 audio (Ogg Vorbis) and spectrogram, once."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.atlas.clips import write_clips  # noqa: E402
from audiosae.data.manifest import read_manifest  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

p = snakemake.params.audio
index = write_clips(read_manifest(snakemake.input.manifest), snakemake.output[0], crop_seconds=p["crop_seconds"],
                    train_crops=p["train_crops"], crop_seed=p["crop_seed"], threads=snakemake.threads)
print(f"{len(index)} clips written to {snakemake.output[0]}", file=sys.stderr)
