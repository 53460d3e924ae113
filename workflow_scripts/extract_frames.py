"""Glue for rule extract_frames: every frame of every clip, for the analysed layers of one model."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import os  # noqa: E402

# Compute jobs never touch the network: weights come from resources/models/{model}.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from audiosae.devices import gpu_slot, resolve_device  # noqa: E402
from audiosae.frames.extract import extract_frames  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

p = snakemake.params
weights = getattr(snakemake.input, "weights", None)
weights = weights if isinstance(weights, str) and weights else None  # packaged models have no weights input
with gpu_slot(snakemake.resources.get("gpu", 0)):
    device = resolve_device(p.device)
    print(f"model {snakemake.wildcards.model} on {device}, dtype {p.dtype}, {snakemake.threads} threads",
          file=sys.stderr)
    extract_frames(
        snakemake.input.manifest, snakemake.output[0], dict(p.model), name=snakemake.wildcards.model,
        layers=list(p.layers), weights_dir=weights, crop_seconds=p.audio["crop_seconds"],
        train_crops=p.audio["train_crops"], crop_seed=p.audio["crop_seed"], window_seconds=p.frames["window_seconds"],
        store_dtype=p.frames["dtype"], chunk_frames=p.frames["chunk_frames"], batch_size=p.batch_size,
        device=device, dtype=p.dtype, threads=snakemake.threads,
    )
