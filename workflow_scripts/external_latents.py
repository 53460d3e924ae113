"""Glue for rule external_latents: an SAE trained elsewhere encodes one node's vectors (rep ext-<name>)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import torch  # noqa: E402

from audiosae.devices import resolve_device  # noqa: E402
from audiosae.interop.latents import write_external  # noqa: E402
from audiosae.interop.readers import read_external  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

torch.set_num_threads(snakemake.threads)
w = snakemake.wildcards
sae = read_external(snakemake.params.format, snakemake.input.sae)
write_external(sae, snakemake.input.store, snakemake.output.metrics.rsplit("/", 1)[0], model=w.model,
               layer=int(w.layer), name=w.name, fmt=snakemake.params.format, path=snakemake.input.sae,
               level=snakemake.params.level, pooling=snakemake.params.pooling,
               device=str(resolve_device(snakemake.params.device)))
