"""Glue for rule splice: every SAE of one node put back into its network (audiosae.splice.run)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import os  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"  # weights come from resources/models only
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402

from audiosae.atomic import atomic_output  # noqa: E402
from audiosae.devices import gpu_slot  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402
from audiosae.splice.run import splice_node  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

w, p, i = snakemake.wildcards, snakemake.params, snakemake.input
torch.set_num_threads(snakemake.threads)
tracks = None
if p.synthetic:
    from audiosae.data.manifest import read_manifest
    from audiosae.data.synthetic import TRACKS_FILE
    from audiosae.frames.acoustics import true_f0_tracks

    tracks_file = Path(i.corpus) / TRACKS_FILE
    if tracks_file.exists():
        tracks = true_f0_tracks(read_manifest(i.manifest), tracks_file, i.corpus)
weights = i.weights if isinstance(i.weights, str) and i.weights else None
with gpu_slot(snakemake.resources.get("gpu", 0)), atomic_output(snakemake.output[0]) as tmp:
    done = splice_node(model=w.model, model_cfg=dict(p.model), layer=int(w.layer), weights_dir=weights,
                       manifest=i.manifest, root=".", embeddings=i.embeddings, frames=i.get("frames"),
                       reps=list(p.reps), targets=list(p.targets), split_params=dict(p.split), audio=dict(p.audio),
                       bootstrap=dict(p.bootstrap), out_dir=tmp, device=p.device, dtype=p.dtype,
                       batch_size=int(p.batch_size), f0_tracks=tracks)
print(f"{len(done['written'])} representations, {done['n_clips']} test clips, patches {done['patches']}, "
      f"{done['wall_s']:.1f} s", file=sys.stderr)
