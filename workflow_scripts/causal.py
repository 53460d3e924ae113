"""Glue for rule causal: one node's erasure curves and card steering (audiosae.causal.run)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import os  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402

from audiosae.causal.run import causal_node  # noqa: E402
from audiosae.devices import gpu_slot, resolve_device  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

p = snakemake.params
w = snakemake.wildcards
weights = getattr(snakemake.input, "weights", None)
weights = weights if isinstance(weights, str) and weights else None
frames = list(snakemake.input.frames)
torch.set_num_threads(snakemake.threads)
with gpu_slot(snakemake.resources.get("gpu", 0)):
    device = resolve_device(p.device)
    print(f"causal {w.model} layer {w.layer} on {device}", file=sys.stderr)
    causal_node(model=w.model, model_cfg=dict(p.model), layer=int(w.layer), weights_dir=weights,
                manifest=snakemake.input.manifest, root=".", embeddings=snakemake.input.embeddings,
                frames=frames[0] if frames else None, attributes=snakemake.input.attributes, reps=list(p.reps),
                targets=list(p.targets), split_params=dict(p.split), audio=dict(p.audio), atlas=dict(p.atlas),
                causal=dict(p.causal), out_path=snakemake.output[0], device=device, dtype=p.dtype,
                batch_size=int(p.batch_size))
