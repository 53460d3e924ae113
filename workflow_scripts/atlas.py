"""Glue for rule atlas: one representation's unit statistics, summary and page."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from threadpoolctl import threadpool_limits  # noqa: E402

from audiosae.atlas.build import build_atlas, recurrence_of  # noqa: E402
from audiosae.jsonio import read_json  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting


def log(msg):
    print(msg, file=sys.stderr)


p = snakemake.params
w = snakemake.wildcards
stability = list(getattr(snakemake.input, "stability", []))
recurrence, threshold = recurrence_of(read_json(stability[0]), w.rep) if stability else (None, 0.7)
causal = list(getattr(snakemake.input, "causal", []))  # the node's causal job, where it tested this rep
with threadpool_limits(limits=snakemake.threads):
    build_atlas(snakemake.input.store, p.array, snakemake.input.manifest, snakemake.input.attributes,
                snakemake.input.clips, snakemake.output[0], model=w.model, layer=int(w.layer), rep=w.rep,
                auroc_threshold=p.atlas["auroc_threshold"], rho_threshold=p.atlas["rho_threshold"],
                top_clips=p.atlas["top_clips"], median_clips=p.atlas["median_clips"],
                bins=p.atlas["histogram_bins"], ridge_folds=p.atlas["ridge_folds"], log=log,
                rank_array=p.rank_array or None,
                frames=tuple(snakemake.input.frames) if len(snakemake.input.frames) == 2 else None,
                recurrence=recurrence, recurrence_threshold=threshold,
                causal=read_json(causal[0]) if causal else None)
