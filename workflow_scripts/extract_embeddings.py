import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import os

# Compute jobs never touch the network: weights come from resources/models/{model}.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from audiosae.devices import gpu_slot, resolve_device
from audiosae.extract import extract_embeddings
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting

p = snakemake.params
weights = getattr(snakemake.input, "weights", None)
weights = weights if isinstance(weights, str) and weights else None  # packaged models have no weights input
with gpu_slot(snakemake.resources.get("gpu", 0)):
    device = resolve_device(p.device)
    print(f"model {snakemake.wildcards.model} on {device}, dtype {p.dtype}, batch {p.batch_size}, "
          f"{snakemake.threads} threads", file=sys.stderr)
    attrs = extract_embeddings(
        snakemake.input.manifest, snakemake.output[0], dict(p.model), name=snakemake.wildcards.model,
        weights_dir=weights, crop_seconds=p.audio["crop_seconds"], train_crops=p.audio["train_crops"],
        crop_seed=p.audio["crop_seed"], batch_size=p.batch_size, device=device, dtype=p.dtype,
        threads=snakemake.threads,
    )
print(f"{attrs['n_items']} items in {attrs['extraction_time_s']} s ({attrs['items_per_s']} items/s)", file=sys.stderr)
