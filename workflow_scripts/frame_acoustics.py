"""Glue for rule frame_acoustics: units of one frame representation against the LLDs (and true f0) over time."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from audiosae.atomic import write_npz  # noqa: E402
from audiosae.data.manifest import read_manifest  # noqa: E402
from audiosae.frames.acoustics import FrameSource, frame_acoustics, read_llds, true_f0_tracks  # noqa: E402
from audiosae.jsonio import write_json  # noqa: E402
from audiosae.layout import Rep  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

w, p = snakemake.wildcards, snakemake.params
rep = Rep.parse(w.rep)
frames = FrameSource("original" if rep.is_original else "fsae", snakemake.input.frames, int(w.layer))
tracks = None
if p.synthetic:
    from audiosae.data.synthetic import TRACKS_FILE

    tracks_file = Path(snakemake.input.corpus) / TRACKS_FILE
    if tracks_file.exists():
        tracks = true_f0_tracks(read_manifest(snakemake.input.manifest), tracks_file, snakemake.input.corpus)
result = frame_acoustics(frames, read_llds(snakemake.input.llds), tracks, max_frames=p.max_frames, seed=p.seed)
rho = result.pop("rho")
doc = {"model": w.model, "layer": int(w.layer), "rep": w.rep, "level": rep.level,
       "max_frames": p.max_frames, "seed": p.seed, **result}
write_json(snakemake.output.json, doc)
write_npz(snakemake.output.npz, {"rho": rho.astype(np.float32),
                                 "targets": np.array([t["target"] for t in result["targets"]])})
best = {t["target"]: round(t["best_abs_rho"], 3) for t in result["targets"]}
print(f"{w.model} layer {w.layer} {w.rep}: MCC {result['mcc']:.3f} over {result['n_frames_used']} frames; "
      f"best |rho| {best}", file=sys.stderr)
