"""Glue for rule ablation: zero each class's top latents, decode, read the original probe (one node)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from audiosae.atlas.ablation import run_ablation  # noqa: E402
from audiosae.jsonio import read_json, write_json  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

torch.set_num_threads(snakemake.threads)
p = snakemake.params
probe = read_json(snakemake.input.probe_json)
doc = run_ablation({rep: Path(d) for rep, d in p.sae_dirs.items()}, snakemake.input.probe_npz,
                   snakemake.input.manifest, label=p.target, external=dict(p.external),
                   test_clip_ids=probe.get("test_clip_ids"), model=snakemake.wildcards.model,
                   layer=int(snakemake.wildcards.layer), m=p.m, draws=p.draws, seed=p.seed,
                   log=lambda msg: print(msg, file=sys.stderr))
write_json(snakemake.output[0], doc)
