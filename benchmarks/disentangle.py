"""Wall time of one disentangle job: shared work against the paper's 88 separate Lasso fits.

A job the size of the paper's (2048 SAE codes, 400 test clips, 88 eGeMAPS
attributes) on synthetic data: sparse non-negative codes (top-k, 90 % zeros,
some dead) driven by a few latent factors, and attributes that are noisy
linear mixtures of the same factors, so the Lasso has real structure to find.

Measured, each the best of --repeats runs:
- in-sample fits, the paper's way: StandardScaler, then 88 x ``Lasso(alpha, max_iter).fit``;
- in-sample fits, ours: one standardisation, one Gram matrix, 88 fits on it;
- the whole job as the rule runs it (in-sample + k-fold CV + scores), with
  shared work, against the same work done with separate fits.

    python benchmarks/disentangle.py            # writes results/benchmarks/disentangle.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from audiosae import disentangle as D


def make_job(n_items=400, n_codes=2048, n_attrs=88, k_active=204, n_latent=12, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_items, n_latent))
    pre = latent @ rng.normal(size=(n_latent, n_codes)) + rng.normal(size=(n_items, n_codes))
    pre[:, : n_codes // 20] -= 100.0  # ~5 % dead codes
    codes = np.zeros_like(pre)
    top = np.argpartition(-pre, k_active, axis=1)[:, :k_active]
    rows = np.arange(n_items)[:, None]
    codes[rows, top] = np.maximum(pre[rows, top], 0.0)
    attrs = latent @ rng.normal(size=(n_latent, n_attrs)) + 0.7 * rng.normal(size=(n_items, n_attrs))
    return codes.astype(np.float32).astype(np.float64), attrs


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def separate_job(x, y, alpha, max_iter, folds, seed):
    """The whole job's fits done the paper's way: one sklearn Lasso per target and fold."""
    from sklearn.model_selection import KFold

    z, *_ = D.standardize(x)
    yz, *_ = D.standardize(y)
    D.lasso_separate(z, yz, alpha, max_iter)
    for train, _ in KFold(folds, shuffle=True, random_state=seed).split(x):
        D.lasso_separate(D.standardize(x[train])[0], D.standardize(y[train])[0], alpha, max_iter)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--codes", type=int, default=2048)
    ap.add_argument("--attributes", type=int, default=88)
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--max-iter", type=int, default=10000)
    ap.add_argument("--cv-folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="threads for the shared-work fits (BLAS too)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default="results/benchmarks")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run at toy sizes (what the tests run)")
    if "--tiny" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(items=60, codes=64, attributes=3, max_iter=200, cv_folds=2)
    args = ap.parse_args(argv)

    from sklearn.preprocessing import StandardScaler

    x, y = make_job(args.items, args.codes, args.attributes, k_active=max(1, args.codes // 10))
    res = {"items": args.items, "codes": args.codes, "attributes": args.attributes, "alpha": args.alpha,
           "max_iter": args.max_iter, "cv_folds": args.cv_folds, "threads": args.threads}
    with threadpool_limits(limits=args.threads):
        def paper_in_sample():
            z = StandardScaler().fit_transform(x)
            yz = StandardScaler().fit_transform(y)
            return D.lasso_separate(z, yz, args.alpha, args.max_iter)

        def shared_in_sample():
            return D.lasso_shared(D.standardize(x)[0], D.standardize(y)[0], args.alpha, args.max_iter,
                                  n_jobs=args.threads)[0]

        t_sep, coef_sep = best_of(paper_in_sample, args.repeats)
        t_sh, coef_sh = best_of(shared_in_sample, args.repeats)
        res["in_sample_separate_s"] = t_sep
        res["in_sample_shared_s"] = t_sh
        res["in_sample_speedup"] = t_sep / t_sh
        res["max_abs_coef_difference"] = float(np.abs(coef_sep - coef_sh).max())
        res["mean_nonzero_coefs_per_attribute"] = float((coef_sh != 0).sum(axis=1).mean())

        names = [f"attr{j}" for j in range(args.attributes)]
        t_job, _ = best_of(lambda: D.analyse_targets(x, y, names, alpha=args.alpha, max_iter=args.max_iter,
                                                     cv_folds=args.cv_folds, n_jobs=args.threads), args.repeats)
        t_job_sep, _ = best_of(lambda: separate_job(x, y, args.alpha, args.max_iter, args.cv_folds, 42), args.repeats)
        res["job_shared_s"] = t_job
        res["job_separate_s"] = t_job_sep
        res["job_speedup"] = t_job_sep / t_job
    import sklearn
    res["machine"] = {"python": platform.python_version(), "sklearn": sklearn.__version__, "numpy": np.__version__,
                      "cpus": os.cpu_count(), "platform": platform.platform()}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "disentangle.json").write_text(json.dumps(res, indent=1) + "\n")
    md = [
        f"# Disentangle job: shared work vs separate fits",
        "",
        f"{args.items} items x {args.codes} codes, {args.attributes} attributes, Lasso alpha {args.alpha}, "
        f"{args.cv_folds}-fold CV, {args.threads} thread(s); best of {args.repeats}.",
        "",
        "| stage | separate fits (s) | shared work (s) | speed-up |",
        "| --- | --- | --- | --- |",
        f"| in-sample, {args.attributes} fits | {t_sep:.2f} | {t_sh:.2f} | {t_sep / t_sh:.1f}x |",
        f"| whole job (in-sample + {args.cv_folds}-fold CV) | {t_job_sep:.2f} | {t_job:.2f} | {t_job_sep / t_job:.1f}x |",
        "",
        f"Largest coefficient difference between the two: {res['max_abs_coef_difference']:.1e}; "
        f"{res['mean_nonzero_coefs_per_attribute']:.1f} non-zero coefficients per attribute on average.",
        "",
    ]
    (out / "disentangle.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
