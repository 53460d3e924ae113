"""Glue for rule stability: seed stability of one node's SAEs, and each seed's numbers for their spread."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from threadpoolctl import threadpool_limits  # noqa: E402

from audiosae.controls.report import stability_node_doc  # noqa: E402
from audiosae.jsonio import write_json  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting


def log(msg):
    print(msg, file=sys.stderr)


p, w = snakemake.params, snakemake.wildcards
with threadpool_limits(limits=snakemake.threads):
    doc = stability_node_doc(p.groups, model=w.model, layer=int(w.layer), default_seed=p.default_seed,
                             manifest=snakemake.input.manifest, attributes=snakemake.input.attributes,
                             threshold=p.threshold, auroc_threshold=p.atlas["auroc_threshold"],
                             rho_threshold=p.atlas["rho_threshold"], log=log)
write_json(snakemake.output[0], doc)
