"""Glue for rule train_sae: one SAE on one layer of an embeddings store."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import torch  # noqa: E402

from audiosae.devices import gpu_slot, resolve_device  # noqa: E402
from audiosae.sae.train import SAEPaths, train_sae  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

torch.set_num_threads(snakemake.threads)
params = dict(snakemake.params.sae)
with gpu_slot(snakemake.resources.get("gpu", 0)):
    device = resolve_device(params.pop("device"))
    train_sae(
        snakemake.input.store,
        model=snakemake.wildcards.model,
        layer=int(snakemake.wildcards.layer),
        outputs=SAEPaths(
            weights=snakemake.output.weights,
            config=snakemake.output.config,
            metrics=snakemake.output.metrics,
            latents=snakemake.output.latents,
        ),
        device=device,
        **params,
    )
