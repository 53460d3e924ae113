"""Limits a stage would hit, checked before any job from what the config and the corpus already determine.

A stage that finds its input too small stops with a clear error, but only after
the jobs before it have run (issue 31: "9 test items are too few for
disentangle.cv_folds = 5", after 40 jobs). Every such limit that the config and
the corpus's split already fix is checked here, where the corpus checks run (the
Snakefile, before the DAG is built; `audiosae.config.validate` for the synthetic
corpus, whose test split its settings give):

- ``disentangle.cv_folds`` against the test clips: the Lasso's cross-validation
  needs at least 2 test clips per fold (`audiosae.disentangle.run_disentangle`);
- ``probe.bootstrap`` against each probe target's test clips: n clips have
  C(2n - 1, n) distinct bootstrap resamples, and asking for more repeats them;
- every probe target has two or more classes on each side (train, valid, test)
  of its split: a probe, its early stopping and its test score need two;
- ``atlas.ablation_m`` against the clip SAEs' widths (`audiosae.config`): more
  latents than an SAE has cannot be zeroed.

Each error names the config key, the number the corpus gives and what to change.
"""

from __future__ import annotations

import math
from typing import Mapping

SPLITS = ("train", "valid", "test")


class LimitError(ValueError):
    """A config setting the corpus cannot meet."""


def distinct_resamples(n: int) -> int:
    """Distinct bootstrap resamples (multisets of size n) of n items: C(2n - 1, n)."""
    return math.comb(2 * n - 1, n) if n > 0 else 0


def check_disentangle(n_test: int, cv_folds: int, what: str = "the corpus") -> None:
    if n_test < 2 * cv_folds:
        fix = (f"lower disentangle.cv_folds to at most {n_test // 2} or add test clips" if n_test >= 4 else
               "add test clips (2 folds, the fewest, need 4)")
        raise LimitError(f"config key 'disentangle.cv_folds': {what} has {n_test} test clips, too few for "
                         f"{cv_folds} folds (the Lasso's cross-validation needs at least 2 per fold, "
                         f"{2 * cv_folds} clips); {fix}")


def check_bootstrap(label: str, n_test: int, resamples: int) -> None:
    distinct = distinct_resamples(n_test)
    if distinct < resamples:
        raise LimitError(f"config key 'probe.bootstrap': probe target '{label}' has {n_test} test clips, which have "
                         f"only {distinct} distinct bootstrap resamples, fewer than probe.bootstrap = {resamples}; "
                         f"add test clips or lower probe.bootstrap (minimum 100)")


def check_sides(label: str, classes_per_split: Mapping[str, list]) -> None:
    """Every side of a probe target's split holds two or more of its classes."""
    for split in SPLITS:
        values = sorted(map(str, classes_per_split.get(split, [])))
        if len(values) < 2:
            held = f"one class ({values[0]!r})" if values else "no clip"
            raise LimitError(f"probe target '{label}': its {split} split holds {held}; a probe needs two or more "
                             f"classes on every side of its split (change the split or the label)")


def check_corpus_limits(frame, config: Mapping) -> None:
    """Every limit above that a split clip table (`audiosae.data.corpus.check_corpus`'s frame) determines."""
    from audiosae.data.corpus import target_splits

    data = config["data"]
    what = {"table": lambda: f"the table {data['table']['file']}",
            "folders": lambda: f"the folder tree {data['folders']['root']}"}.get(data["corpus"], lambda: "the corpus")()

    params = {"test_fraction": config["data"].get("test_fraction", 0.2), "valid_fraction": config["data"]["valid_fraction"],
              "split_seed": config["data"]["split_seed"]}
    check_disentangle(int((frame["split"] == "test").sum()), int(config["disentangle"]["cv_folds"]), what)
    for target in config["probe"]["targets"]:
        label = target["label"]
        split = target_splits(frame, target, params)
        check_sides(label, {s: list(frame.loc[split == s, label].unique()) for s in SPLITS})
        check_bootstrap(label, int((split == "test").sum()), int(config["probe"]["bootstrap"]))
