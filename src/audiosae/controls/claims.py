"""Every claim against its null: the same statistic on the random-weights twin.

A study with `controls.random_twin` has, beside each model `<name>`, the model
`<name>_random` in every table. `with_twin(func, tables)` answers a claim
function twice, once on the trained models' rows and once on the twins' rows
(renamed to their trained model, so the same rule pairs the same nodes), and
judges the pair:

- the trained models meet the claim's rule (``supported``):
  - if the claim reports an effect with an interval (``numbers["effect"]`` =
    [estimate, lo, hi], larger = the claim holds more strongly), it stays
    ``supported`` only when the trained effect's interval lies above the twin's
    (``lo`` above the twin's ``hi``); otherwise it is ``also on random weights``
    when the twin meets the rule too, and ``inconclusive`` when it does not but
    the intervals overlap;
  - without an effect interval, it stays ``supported`` when the twin does not
    meet the rule, and becomes ``also on random weights`` when it does;
- otherwise the trained verdict stands (``mixed``, ``not supported``,
  ``inconclusive``, ``untestable``), and the sentence says what the twin got.

Both sentences are kept side by side (`Claim.numbers["trained"]`/``["twin"]``
and the combined sentence), so a reader sees the null beside the claim.
"""

from __future__ import annotations

from typing import Callable

import pandas as pd

from audiosae.encoders.twin import is_twin_name, trained_name

SUPPORTED, MIXED, NOT_SUPPORTED, UNTESTABLE, INCONCLUSIVE = (
    "supported", "mixed", "not supported", "untestable", "inconclusive")
ALSO_RANDOM = "also on random weights"


def split_twin(tables: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame] | None]:
    """(the trained models' rows, the twins' rows renamed to their trained model), or (tables, None) without twins.

    A table without a `model` column goes to both sides unchanged.
    """
    has_twin = any("model" in df and df["model"].astype(str).map(is_twin_name).any() for df in tables.values())
    if not has_twin:
        return tables, None
    trained, twin = {}, {}
    for name, df in tables.items():
        if "model" not in df:
            trained[name] = twin[name] = df
            continue
        mask = df["model"].astype(str).map(is_twin_name).to_numpy(bool)
        trained[name] = df[~mask].reset_index(drop=True)
        twin[name] = df[mask].assign(model=df.loc[mask, "model"].astype(str).map(trained_name)).reset_index(drop=True)
    return trained, twin


def _effect(claim) -> tuple[float, float, float] | None:
    e = (claim.numbers or {}).get("effect")
    if e is None or len(e) != 3 or any(v is None for v in e):
        return None
    return float(e[0]), float(e[1]), float(e[2])


def judge(trained, twin):
    """The trained claim judged against its twin's (both `audiosae.report.claims.Claim`); returns a new Claim."""
    from dataclasses import replace

    t_eff, r_eff = _effect(trained), _effect(twin)
    beyond = None if t_eff is None or r_eff is None else t_eff[1] > r_eff[2]
    twin_holds = twin.verdict == SUPPORTED
    if trained.verdict == SUPPORTED:
        if beyond:
            verdict, why = SUPPORTED, ("the trained models' effect exceeds the twin's beyond the interval "
                                       f"({_iv(t_eff)} against {_iv(r_eff)})")
        elif twin_holds:
            verdict, why = ALSO_RANDOM, ("the same rule holds on random weights" +
                                         (f"; the effects' intervals overlap ({_iv(t_eff)} against {_iv(r_eff)})"
                                          if beyond is False else ""))
        elif beyond is False:
            verdict, why = INCONCLUSIVE, (f"the twin does not meet the rule ({twin.verdict}), but the trained "
                                          f"effect's interval does not clear the twin's ({_iv(t_eff)} against "
                                          f"{_iv(r_eff)})")
        else:
            verdict, why = SUPPORTED, f"the twin does not meet the same rule ({twin.verdict})"
    else:
        verdict = trained.verdict
        why = (f"the twin meets the rule that the trained models do not ({twin.verdict})" if twin_holds
               else f"the twin: {twin.verdict}")
    sentence = (f"Trained: {trained.sentence} Random-weights twin: {twin.sentence} "
                f"Against the twin: {trained.verdict} vs {twin.verdict} — {why}.")
    rule = (trained.rule + " Against the random-weights twin (same rule on its rows): supported only where the "
            "trained models' effect exceeds the twin's beyond the interval (claims with an effect interval) or the "
            "twin does not meet the rule (claims without); 'also on random weights' where the twin meets it too.")
    numbers = {**(trained.numbers or {}), "trained_verdict": trained.verdict, "twin_verdict": twin.verdict,
               "trained": trained.numbers, "twin": twin.numbers, "twin_sentence": twin.sentence,
               "trained_sentence": trained.sentence, "beyond_twin_interval": beyond}
    return replace(trained, sentence=sentence, verdict=verdict, rule=rule, numbers=numbers)


def _iv(e) -> str:
    return "n/a" if e is None else f"{e[0]:.3g} [{e[1]:.3g}, {e[2]:.3g}]"


def with_twin(func: Callable, tables: dict[str, pd.DataFrame]) -> list:
    """The claims of `func(tables)` judged against the random-weights twin (plain `func(tables)` without twins)."""
    trained, twin = split_twin(tables)
    claims = func(trained)
    if twin is None:
        return claims
    twin_claims = {c.key: c for c in func(twin)}
    return [judge(c, twin_claims[c.key]) if c.key in twin_claims else c for c in claims]
