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
    the intervals overlap. Where the study trained SAEs with several seeds
    (controls.seeds), the claim also reports its effect recomputed with each
    seed's SAEs (``numbers["effect_seeds"]``), and each side's band is the
    wider of its interval and its range over seeds: the trained effect must
    clear the twin's beyond both;
  - without an effect interval, it stays ``supported`` when the twin does not
    meet the rule, and becomes ``also on random weights`` when it does;
- otherwise the trained verdict stands (``mixed``, ``not supported``,
  ``inconclusive``, ``untestable``), and the sentence says what the twin got.

Both sentences are kept side by side (`Claim.numbers["trained"]`/``["twin"]``
and the combined sentence), so a reader sees the null beside the claim.
"""

from __future__ import annotations

import math
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
    """(estimate, lo, hi) of the claim's effect, lo and hi widened to its range over SAE seeds where that is wider."""
    e = (claim.numbers or {}).get("effect")
    if e is None or len(e) != 3 or any(v is None or not math.isfinite(float(v)) for v in e):
        return None
    est, lo, hi = float(e[0]), float(e[1]), float(e[2])
    seeds = seed_range(claim)
    if seeds is not None:
        lo, hi = min(lo, seeds[0]), max(hi, seeds[1])
    return est, lo, hi


def seed_range(claim) -> tuple[float, float] | None:
    """(min, max) of the claim's effect over SAE seeds (`numbers["effect_seeds"]`), None without two seeds."""
    values = [float(v) for v in ((claim.numbers or {}).get("effect_seeds") or {}).values()
              if v is not None and math.isfinite(float(v))]
    return (min(values), max(values)) if len(values) > 1 else None


def seed_name(seed) -> str:
    """'seed 43', or 'the default seed' for the key 'default'."""
    return "the default seed" if seed == "default" else f"seed {seed}"


def _seed_note(claim) -> str:
    """'; over seed 42, seed 43: a to b, wider than the interval' where the claim has an effect over seeds."""
    seeds, e = seed_range(claim), (claim.numbers or {}).get("effect")
    if seeds is None or e is None:
        return ""
    names = ", ".join(seed_name(s) for s in claim.numbers["effect_seeds"])
    wider = seeds[0] < float(e[1]) or seeds[1] > float(e[2])
    return (f"; over {names}: {seeds[0]:.3g} to {seeds[1]:.3g}"
            + (", wider than the interval" if wider else ", within the interval"))


def judge(trained, twin):
    """The trained claim judged against its twin's (both `audiosae.report.claims.Claim`); returns a new Claim."""
    from dataclasses import replace

    t_eff, r_eff = _effect(trained), _effect(twin)
    beyond = None if t_eff is None or r_eff is None else t_eff[1] > r_eff[2]
    margin = ("the interval or the spread over SAE seeds, whichever is wider"
              if seed_range(trained) or seed_range(twin) else "the interval")
    twin_holds = twin.verdict == SUPPORTED
    if trained.verdict == SUPPORTED:
        if beyond:
            verdict, why = SUPPORTED, (f"the trained models' effect exceeds the twin's beyond {margin} "
                                       f"({_iv(trained)} against {_iv(twin)})")
        elif twin_holds:
            verdict, why = ALSO_RANDOM, ("the same rule holds on random weights" +
                                         (f"; the effects overlap within {margin} ({_iv(trained)} against "
                                          f"{_iv(twin)})"
                                          if beyond is False else ""))
        elif beyond is False:
            verdict, why = INCONCLUSIVE, (f"the twin does not meet the rule ({twin.verdict}), but the trained "
                                          f"effect does not clear the twin's beyond {margin} ({_iv(trained)} "
                                          f"against {_iv(twin)})")
        else:
            verdict, why = SUPPORTED, f"the twin does not meet the same rule ({twin.verdict})"
    else:
        verdict = trained.verdict
        why = (f"the twin meets the rule that the trained models do not ({twin.verdict})" if twin_holds
               else f"the twin: {twin.verdict}")
    sentence = (f"Trained: {trained.sentence} Random-weights twin: {twin.sentence} "
                f"Against the twin: {trained.verdict} vs {twin.verdict} — {why}.")
    rule = (trained.rule + " Against the random-weights twin (same rule on its rows): supported only where the "
            "trained models' effect exceeds the twin's beyond the interval, or beyond the spread over SAE seeds where "
            "that is wider (claims with an effect interval), or the "
            "twin does not meet the rule (claims without); 'also on random weights' where the twin meets it too.")
    numbers = {**(trained.numbers or {}), "trained_verdict": trained.verdict, "twin_verdict": twin.verdict,
               "trained": trained.numbers, "twin": twin.numbers, "twin_sentence": twin.sentence,
               "trained_sentence": trained.sentence, "beyond_twin_interval": beyond,
               "twin_effect": (twin.numbers or {}).get("effect"),
               "twin_effect_seeds": (twin.numbers or {}).get("effect_seeds")}
    return replace(trained, sentence=sentence, verdict=verdict, rule=rule, numbers=numbers)


def _iv(claim) -> str:
    """The claim's effect as 'estimate [lo, hi]' (its interval), with its range over SAE seeds where it has one."""
    e = (claim.numbers or {}).get("effect")
    if _effect(claim) is None:
        return "n/a"
    return f"{float(e[0]):.3g} [{float(e[1]):.3g}, {float(e[2]):.3g}]" + _seed_note(claim)


def with_twin(func: Callable, tables: dict[str, pd.DataFrame]) -> list:
    """The claims of `func(tables)` judged against the random-weights twin (plain `func(tables)` without twins)."""
    trained, twin = split_twin(tables)
    claims = func(trained)
    if twin is None:
        return claims
    twin_claims = {c.key: c for c in func(twin)}
    return [judge(c, twin_claims[c.key]) if c.key in twin_claims else c for c in claims]
