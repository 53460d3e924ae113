import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from threadpoolctl import threadpool_limits

from audiosae.atomic import write_npz
from audiosae.data.manifest import read_manifest
from audiosae.jsonio import write_json
from audiosae.layout import probe_path
from audiosae.probe import load_probe_data, run_probe
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting


def log(msg):
    print(msg, file=sys.stderr)


p, w = snakemake.params, snakemake.wildcards
manifest = read_manifest(snakemake.input.manifest)
for target, split in p.targets.items():
    json_path, npz_path = (probe_path(target, w.model, w.layer, w.rep, ext) for ext in ("json", "npz"))
    if json_path not in snakemake.output.json or npz_path not in snakemake.output.npz:
        raise RuntimeError(f"rule probe: {json_path} is not among its outputs; rules/probe.smk and "
                           f"audiosae.layout disagree")
    split = dict(split)
    data = load_probe_data(snakemake.input.store, p.array, manifest, target, split.pop("strategy"), **split)
    log(f"target {data.target} (split: {data.split_strategy}), {len(data.classes)} classes; "
        f"{snakemake.input.store} [{p.array}]: " + ", ".join(f"{s} {len(v)}" for s, v in data.y.items())
        + f" items, dim {data.x['train'].shape[1]}")
    with threadpool_limits(limits=snakemake.threads):  # one BLAS thread: the matrices are small
        doc, weights = run_probe(data, seeds=p.seeds, lr=p.lr, batch_size=p.batch_size, epochs=p.epochs,
                                 patience=p.patience, standardize=p.standardize, bootstrap=p.bootstrap, ci=p.ci,
                                 bootstrap_seed=p.bootstrap_seed, model=snakemake.wildcards.model,
                                 layer=int(snakemake.wildcards.layer), rep=snakemake.wildcards.rep, log=log)
    lo, hi = doc["accuracy_ci"]
    log(f"{target}: test accuracy {doc['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] ({100 * doc['ci']:g} % bootstrap interval)")
    write_npz(npz_path, weights)
    write_json(json_path, doc)
