"""Glue for rule sparse_probe: k-sparse probes of one node's layer and clip SAEs, for every probe target."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from threadpoolctl import threadpool_limits  # noqa: E402

from audiosae.controls.report import sparse_probe_doc  # noqa: E402
from audiosae.data.manifest import read_manifest  # noqa: E402
from audiosae.jsonio import write_json  # noqa: E402
from audiosae.layout import rep_array  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting


def log(msg):
    print(msg, file=sys.stderr)


p, w = snakemake.params, snakemake.wildcards
manifest = read_manifest(snakemake.input.manifest)
docs = []
with threadpool_limits(limits=snakemake.threads):
    for rep, store in p.stores.items():
        log(f"{w.model} layer {w.layer} {rep}")
        docs.append(sparse_probe_doc(store, rep_array(w.layer, rep), manifest, p.targets, model=w.model,
                                     layer=int(w.layer), rep=rep, ks=tuple(p.ks), resamples=p.bootstrap, ci=p.ci,
                                     seed=p.bootstrap_seed, **p.split, log=log))
write_json(snakemake.output[0], {"model": w.model, "layer": int(w.layer), "reps": docs})
