"""Glue for rule train_frame_sae: one frame-level SAE on one layer of a frame store."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import torch  # noqa: E402

from audiosae.devices import gpu_slot, resolve_device  # noqa: E402
from audiosae.frames.train import FrameSAEPaths, train_frame_sae  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

torch.set_num_threads(snakemake.threads)
params = dict(snakemake.params.sae)
with gpu_slot(snakemake.resources.get("gpu", 0)):
    device = resolve_device(params.pop("device"))
    train_frame_sae(
        snakemake.input.store,
        model=snakemake.wildcards.model,
        layer=int(snakemake.wildcards.layer),
        outputs=FrameSAEPaths(
            weights=snakemake.output.weights,
            config=snakemake.output.config,
            metrics=snakemake.output.metrics,
            latents=snakemake.output.latents,
            frame_codes=snakemake.output.frame_codes,
        ),
        device=device,
        **params,
    )
