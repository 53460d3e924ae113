import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from threadpoolctl import threadpool_limits

from audiosae.disentangle import run_disentangle, write_json, write_npz
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting


def log(msg):
    print(msg, file=sys.stderr)


p = snakemake.params
with threadpool_limits(limits=snakemake.threads):
    doc, arrays = run_disentangle(
        snakemake.input.store, p.array, snakemake.input.attributes, snakemake.input.manifest,
        model=snakemake.wildcards.model, layer=int(snakemake.wildcards.layer), rep=snakemake.wildcards.rep,
        alpha=p.alpha, max_iter=p.max_iter, top_n=p.top_n, cv_folds=p.cv_folds, eps=p.eps, seed=p.seed,
        n_jobs=snakemake.threads, log=log,
    )
for name, t in doc["targets"].items():
    log(f"{name}: top-{p.top_n} R2 {t['top_r2']['r2_mean']:.3f}, completeness {t['top_r2']['completeness_mean']:.3f}, "
        f"CV R2 mean {t['r2_cv_mean']:.3f}, undefined {t['n_undefined']}")
write_npz(snakemake.output.npz, arrays)
write_json(snakemake.output.json, doc)
