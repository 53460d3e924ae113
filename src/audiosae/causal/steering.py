"""Steering: does adding a card's direction move the output its label predicts?

For a unit with a label on its atlas card (a class of a label column, or an
attribute it correlates with), the network runs with `α · m · d` added to every
frame of the patched layer (the same vector on every frame: a clip-level direction
shifts every frame by the same amount, as in the clip splice), for each multiple m:

- d: an SAE latent's contribution to the reconstruction (`patches.contribution` of
  a code of 1: its decoder column, in the layer's space); a layer unit's basis vector;
- α: an SAE latent's 95th percentile activation over the train frames (clips for a
  clip SAE) where it fires; a layer unit's 95th percentile minus its median over the
  train clips (its values are not sparse, so the step is its spread, not its level);
- what is measured, per test clip, as steered minus clean, signed so that the label
  predicts a positive change:
  - a class: the output-level probe's probability of that class;
  - F0 on CREPE: the predicted pitch in cents, averaged over the frames the clean
    output calls voiced (periodicity at least `VOICED`), times the sign of ρ;
  - another attribute: the output-level linear read-out of the attribute (ridge on
    the clean train clips' last-layer vectors), in train standard deviations, times
    the sign of ρ;
- the control: `n_random` random directions of the same norm (Gaussian, normalised),
  measured the same way; their mean effect over clips, per direction.

Badge, at the largest multiple: **causal** when the effect's 95 % bootstrap interval
over clips lies above 0 and the effect exceeds the random directions' mean by more
than `z` of their standard deviations; **not causal** otherwise; **untestable** when
the label has no output to read (a label column without an output-level probe, an
attribute the output cannot read, a pitch label without voiced frames) or α is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from audiosae.bootstrap import percentile_interval, resample_means
from audiosae.encoders.crepe import VOICED_PERIODICITY as VOICED  # CREPE calls a frame voiced from it

CAUSAL, NOT_CAUSAL, UNTESTABLE = "causal", "not causal", "untestable"
Z = 2.0


@dataclass
class Test:
    """What a card's label predicts at the output."""

    unit: int
    label: str
    kind: str
    """class | pitch | attribute"""
    column: str
    """The label column (class) or the attribute's name."""
    value: str = ""
    """The class (class labels)."""
    sign: float = 1.0
    """+1 when the label predicts a rise (a class, ρ > 0), -1 when ρ < 0."""
    untestable: str = ""
    """Why the card cannot be tested ('' when it can)."""
    readout: Callable | None = field(default=None, repr=False)
    """pooled [N, D] -> [N] (class probability, attribute read-out); None for pitch."""


def is_f0(name: str) -> bool:
    """Whether an attribute is the level of the fundamental frequency: eGeMAPS's F0 mean and percentiles, or the
    synthetic corpus's true f0 factor (not F0's spread or slopes, nor harmonic differences relative to F0)."""
    n = name.lower()
    if n.startswith("factor_"):
        return n[len("factor_"):] in ("f0", "f0_hz", "f0_semitones", "f0_cents")
    return n.startswith("f0semitone") and ("amean" in n or "percentile" in n)


def card_tests(table: pd.DataFrame, top_n: int, *, pitch_output: bool, probes: dict, attribute_readouts: dict,
               auroc_threshold: float = 0.9) -> list[Test]:
    """The top `top_n` labelled live cards of a page (`unit_statistics(...).table`, clearest first, as the page
    orders them) and what each one's label predicts at the output.

    A card's label tested is its strongest: the class of the label column with the best AUROC when that clears
    `auroc_threshold`, else its best attribute. `probes`: {label column: OutputProbe}; `attribute_readouts`:
    {attribute: callable pooled -> values in train sd, or a str saying why it cannot be read}.
    """
    live = ~(table["dead"].astype(bool) | table["constant"].astype(bool))
    labelled = table[live & table["clear"].astype(bool)]
    labelled = labelled.sort_values(["clarity", "unit"], ascending=[False, True], kind="stable").head(int(top_n))
    out = []
    for r in labelled.itertuples(index=False):
        row = r._asdict()
        unit, label = int(row["unit"]), str(row["label"])
        if bool(row["clear_by_auroc"]) and float(row["best_auroc"]) >= auroc_threshold:
            # the label's classes by AUROC, strongest first; the first one the output can be read for is tested
            cols = sorted((c[: -len("_auroc")] for c in table.columns if c.endswith("_auroc")
                           and f"{c[: -len('_auroc')]}_class" in table.columns
                           and np.isfinite(float(row[c])) and float(row[c]) >= auroc_threshold),
                          key=lambda c: -float(row[f"{c}_auroc"]))
            why = []
            for col in cols:
                cls = str(row[f"{col}_class"])
                probe = probes.get(col)
                if probe is None:
                    why.append(f"no output-level probe of '{col}'")
                elif cls not in probe.classes:
                    why.append(f"the output-level probe of '{col}' never saw class {cls!r}")
                else:
                    k = probe.classes.index(cls)
                    out.append(Test(unit, label, "class", col, cls, readout=lambda x, p=probe, k=k: p.proba(x)[:, k]))
                    break
            else:
                col = cols[0] if cols else str(row["best_auroc_column"])
                out.append(Test(unit, label, "class", col, str(row.get(f"{col}_class", "")),
                                untestable="; ".join(why) or "no label column to read"))
            continue
        attr = str(row["best_attribute"])
        rho = _rho_of(table, unit, attr)
        sign = 1.0 if rho > 0 else -1.0
        if pitch_output and is_f0(attr):
            out.append(Test(unit, label, "pitch", attr, sign=sign))
            continue
        fn = attribute_readouts.get(attr)
        if fn is None or isinstance(fn, str):
            out.append(Test(unit, label, "attribute", attr, sign=sign,
                            untestable=fn or f"no output-level read-out of {attr}"))
        else:
            out.append(Test(unit, label, "attribute", attr, sign=sign, readout=fn))
    return out


def _rho_of(table: pd.DataFrame, unit: int, attr: str) -> float:
    row = table.loc[table["unit"] == unit].iloc[0]
    for col in table.columns:
        if col.endswith("_rho") and str(row.get(col[: -len("_rho")], "")) == attr:
            return float(row[col])
    return float("nan")


def effect_per_clip(test: Test, steered, clean) -> np.ndarray:
    """[N] the signed change the label predicts, steered minus clean (NaN for a clip it cannot be read on)."""
    if test.kind == "pitch":
        voiced = clean.periodicity >= VOICED
        diff = np.where(voiced, steered.pitch - clean.pitch, np.nan)
        with np.errstate(invalid="ignore"):
            per = np.nanmean(diff, axis=1) if diff.size else np.zeros(len(diff))
        per = np.where(voiced.any(axis=1), per, np.nan)
        return test.sign * per
    return test.sign * (np.asarray(test.readout(steered.pooled)) - np.asarray(test.readout(clean.pooled)))


def random_directions(width: int, n: int, seed: int) -> np.ndarray:
    """[n, width] Gaussian directions of unit norm."""
    rng = np.random.default_rng(int(seed))
    u = rng.standard_normal((int(n), int(width)))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def steer(test: Test, run: Callable[[np.ndarray], object], clean, direction: np.ndarray, alpha: float, multiples,
          *, n_random: int = 20, seed: int = 42, resamples: int = 1000, z: float = Z) -> dict:
    """One card's steering result: per multiple the effect with its interval and the random directions' effects;
    the badge and its line at the largest multiple. `run(vector [D]) -> Readout` adds the vector to every frame."""
    base = {"unit": test.unit, "label": test.label, "kind": test.kind, "column": test.column, "value": test.value,
            "sign": test.sign, "alpha": float(alpha)}
    if test.untestable:
        return {**base, "badge": UNTESTABLE, "line": f"untestable: {test.untestable}", "multiples": []}
    if not np.isfinite(alpha) or alpha <= 0:
        return {**base, "badge": UNTESTABLE, "line": "untestable: the unit's step α is 0 on the train clips",
                "multiples": []}
    d = np.asarray(direction, dtype=np.float64)
    rand = random_directions(len(d), n_random, seed)
    per_m = []
    for m in sorted(float(x) for x in multiples):
        v = m * alpha * d
        eff = effect_per_clip(test, run(v), clean)
        ok = np.isfinite(eff)
        if not ok.any():
            return {**base, "badge": UNTESTABLE, "line": "untestable: no test clip to read the output on "
                                                         "(no voiced frame)", "multiples": []}
        est = float(eff[ok].mean())
        lo, hi = percentile_interval(resample_means(eff[ok], resamples, seed))
        norm = float(np.linalg.norm(v))
        reff = []
        for u in rand:
            e = effect_per_clip(test, run(u * norm), clean)
            reff.append(float(np.nanmean(e)) if np.isfinite(e).any() else float("nan"))
        reff = np.asarray(reff)
        per_m.append({"multiple": m, "norm": norm, "effect": est, "lo": lo, "hi": hi, "n_clips": int(ok.sum()),
                      "random_mean": float(np.nanmean(reff)), "random_sd": float(np.nanstd(reff, ddof=1))
                      if np.isfinite(reff).sum() > 1 else 0.0, "random_effects": reff.tolist()})
    top = per_m[-1]
    causal = top["lo"] > 0 and top["effect"] > top["random_mean"] + z * top["random_sd"]
    return {**base, "badge": CAUSAL if causal else NOT_CAUSAL, "line": _line(test, top, causal),
            "multiples": per_m, **{k: top[k] for k in ("multiple", "effect", "lo", "hi", "random_mean", "random_sd")}}


def _line(test: Test, top: dict, causal: bool) -> str:
    if test.kind == "class":
        what, fmt = f"P({test.value}) at the output", "{:.3f}"
    elif test.kind == "pitch":
        what, fmt = "the predicted pitch (cents)", "{:.1f}"
    else:
        what, fmt = f"the output's read-out of {test.column} (train sd)", "{:.3f}"
    verb = "raises" if test.sign > 0 else "lowers"  # the numbers are signed: a fall counts positive for "lowers"
    f = fmt.format
    return (f"{CAUSAL if causal else NOT_CAUSAL}: steering (×{top['multiple']:g} α) {verb} {what} by "
            f"{f(top['effect'])} [{f(top['lo'])}, {f(top['hi'])}]; random directions {f(top['random_mean'])} ± "
            f"{f(top['random_sd'])}")
