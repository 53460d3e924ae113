"""The paper's four claims, answered from this run's tables.

Every sentence is computed from the numbers (nothing is written in advance), and
each claim gets a verdict — ``supported``, ``mixed``, ``not supported``, or
``untestable`` when the run lacks what the claim needs (one sparsity, one layer)
— by a rule stated next to it, so a reader can check it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from audiosae.report.aggregate import ORIGINAL

SUPPORTED, MIXED, NOT_SUPPORTED, UNTESTABLE = "supported", "mixed", "not supported", "untestable"
ACCURACY_TOLERANCE_POINTS = 5.0  # "about as well": within this many accuracy points of the original
SHARP_RATIO = 1.5  # "sharply": the last sparsity step multiplies the mean FVU by at least this
MAJORITY = 0.75  # share of (node, sparsity) pairs that must agree for "supported"
PHONETIC = ("formants", "MFCC")


@dataclass
class Claim:
    number: int
    title: str
    paper: str  # the claim as PAPER.md states it
    sentence: str  # the answer, computed from the tables
    verdict: str
    rule: str  # how the verdict follows from the numbers
    table: str  # the table that supports it
    figure: str  # the figure that supports it
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _g(x: float) -> str:
    return f"{float(x):g}"


def _node(row) -> str:
    return f"{row['model']} layer {int(row['layer'])}"


def _against_original(df: pd.DataFrame, cols: list[str], keys=("model", "layer")) -> pd.DataFrame:
    """SAE rows joined with the original row of the same node (columns <col>_orig)."""
    keys = list(keys)
    orig = df[df["rep"] == ORIGINAL][keys + cols]
    sae = df[df["rep"] != ORIGINAL]
    return sae.merge(orig, on=keys, suffixes=("", "_orig"), how="inner")


# ---------------------------------------------------------------- claim 1


def claim_task_information(probe: pd.DataFrame, tol: float = ACCURACY_TOLERANCE_POINTS) -> Claim:
    paper = ("SAE codes keep the task information: a linear probe on SAE codes classifies singing technique about "
             "as well as a probe on the original layer output, even at 95–99 % sparsity.")
    rule = (f"supported when every node's probe at the sparsest SAE stays within {tol:g} accuracy points of the "
            f"original; mixed when only the average does; not supported otherwise.")
    base = dict(number=1, title="SAE codes keep the task information", paper=paper, rule=rule, table="probe",
                figure="probe_accuracy_vs_sparsity")
    j = _against_original(probe, ["accuracy"])
    if j.empty:
        return Claim(sentence="No probe results on both SAE codes and original outputs of the same node.",
                     verdict=UNTESTABLE, **base)
    j = j.assign(loss=100.0 * (j["accuracy_orig"] - j["accuracy"]))
    top = float(j["sparsity"].max())
    at_top = j[j["sparsity"] == top]
    worst = at_top.loc[at_top["loss"].idxmax()]
    mean_loss = float(at_top["loss"].mean())
    n_within = int((at_top["loss"].round(1) <= tol).sum())  # as printed, to one decimal
    n = len(at_top)
    worst_loss = round(float(worst["loss"]), 1)
    if worst_loss > 0:
        change = f"lose at most {worst_loss:.1f} points of test accuracy"
    elif worst_loss == 0:
        change = "lose no accuracy at any node"
    else:
        change = f"gain at every node, by at least {-worst_loss:.1f} points of test accuracy"
    mean_r = round(mean_loss, 1)
    average = ("on average they lose nothing" if mean_r == 0 else
               f"on average they {'lose' if mean_r > 0 else 'gain'} {abs(mean_r):.1f} points")
    sentence = (
        f"At sparsity {_g(top)}, the sparsest SAE of this run, probes on SAE codes {change} against the original "
        f"layer output (worst: {_node(worst)}, {100 * worst['accuracy_orig']:.1f} % → {100 * worst['accuracy']:.1f} %); "
        f"{average}, and {n_within} of {n} nodes stay within {tol:g} points."
    )
    lower = j[j["sparsity"] < top]
    if not lower.empty:
        worst_by_s = lower.groupby("sparsity")["loss"].max()
        sentence += " Worst change at lower sparsities: " + ", ".join(
            f"{0.0 - v:+.1f} points at {_g(s)}" for s, v in worst_by_s.items()) + "."
    if "n_classes" in probe and probe["n_classes"].notna().any():
        chance = 100 / float(probe["n_classes"].max())
        orig_acc = 100 * probe.loc[probe["rep"] == ORIGINAL, "accuracy"]
        sentence += (f" For scale: chance is {chance:.1f} %, the original outputs reach "
                     f"{orig_acc.min():.1f}–{orig_acc.max():.1f} %.")
        near = int((orig_acc <= chance + tol).sum())
        if near:
            sentence += (f" {near} of {len(orig_acc)} original probes are at most {tol:g} points above chance, "
                         f"so the comparison says little there.")
    if top < 0.95:
        sentence += f" (The paper's claim is about 0.95–0.99; this run stops at {_g(top)}.)"
    if worst_loss <= tol:
        verdict = SUPPORTED
    elif mean_loss <= tol:
        verdict = MIXED
    else:
        verdict = NOT_SUPPORTED
    numbers = {"sparsity": top, "worst_loss_points": float(worst["loss"]), "worst_node": _node(worst),
               "mean_loss_points": mean_loss, "nodes_within_tolerance": n_within, "nodes": n}
    return Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)


# ---------------------------------------------------------------- claim 2


def claim_reconstruction(rec: pd.DataFrame, sharp: float = SHARP_RATIO) -> Claim:
    paper = "Reconstruction degrades sharply at 99 % sparsity."
    rule = (f"supported when the last sparsity step raises test FVU in every node and multiplies the mean FVU by "
            f"at least {sharp:g}, more than any earlier step; mixed when FVU rises from the lowest to the highest "
            f"sparsity without that; not supported when it does not rise.")
    base = dict(number=2, title="Reconstruction degrades at the highest sparsity", paper=paper, rule=rule,
                table="reconstruction", figure="fvu_vs_sparsity")
    if rec.empty:
        return Claim(sentence="No SAE metrics in this run.", verdict=UNTESTABLE, **base)
    sp = sorted(rec["sparsity"].unique())
    mean = rec.groupby("sparsity")["test_fvu"].mean()
    top_rows = rec[rec["sparsity"] == sp[-1]]
    worst = top_rows.loc[top_rows["test_fvu"].idxmax()]
    tail = (f"; highest at {_g(sp[-1])}: {_node(worst)} (FVU {worst['test_fvu']:.3f}, "
            f"cosine {worst['test_cosine']:.3f}).")
    if len(sp) < 2:
        return Claim(sentence=f"Only one sparsity ({_g(sp[0])}) was trained: mean test FVU {mean.iloc[0]:.3f}"
                     + tail + " A trend needs two.", verdict=UNTESTABLE, **base)
    ratios = [float(mean[b] / mean[a]) if mean[a] > 0 else np.inf for a, b in zip(sp[:-1], sp[1:])]
    piv = rec.pivot_table(index=["model", "layer"], columns="sparsity", values="test_fvu")
    n_rise = int((piv[sp[-1]] > piv[sp[-2]]).sum())
    n_nodes = len(piv)
    sentence = (
        f"Mean test FVU (over {n_nodes} nodes) goes from {mean[sp[0]]:.3f} at sparsity {_g(sp[0])} to "
        f"{mean[sp[-1]]:.3f} at {_g(sp[-1])}; the last step ({_g(sp[-2])} → {_g(sp[-1])}) multiplies it by "
        f"{ratios[-1]:.2f}"
    )
    if len(ratios) > 1:
        sentence += f", against at most {max(ratios[:-1]):.2f} for an earlier step"
    sentence += f", and raises FVU in {n_rise} of {n_nodes} nodes" + tail
    if sp[-1] < 0.99:
        sentence += f" (The paper's claim is about 0.99; this run stops at {_g(sp[-1])}.)"
    if mean[sp[-1]] <= mean[sp[0]]:
        verdict = NOT_SUPPORTED
    elif ratios[-1] >= sharp and ratios[-1] >= max(ratios) and n_rise == n_nodes:
        verdict = SUPPORTED
    else:
        verdict = MIXED
    numbers = {"sparsities": [float(s) for s in sp], "mean_test_fvu": [float(mean[s]) for s in sp],
               "step_ratios": ratios, "nodes_rising_last_step": n_rise, "nodes": n_nodes}
    return Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)


# ---------------------------------------------------------------- claim 3


def claim_disentanglement(dis: pd.DataFrame, majority: float = MAJORITY) -> Claim:
    paper = ("SAE codes are more disentangled: each acoustic attribute is carried by fewer codes (higher "
             "completeness) than in the dense representation.")
    rule = (f"supported when, in at least {100 * majority:.0f} % of (node, sparsity) pairs, SAE codes have both higher "
            f"top-R² completeness and fewer effective codes per attribute than the original output (eGeMAPS); "
            f"not supported when at most {100 * (1 - majority):.0f} % have either; mixed otherwise.")
    base = dict(number=3, title="SAE codes are more disentangled", paper=paper, rule=rule, table="disentanglement",
                figure="completeness_vs_sparsity")
    cols = ["completeness_mean", "effective_codes_mean"]
    j = _against_original(dis, cols, keys=("model", "layer", "target"))
    eg = j[j["target"] == "egemaps"]
    if eg.empty:
        return Claim(sentence="No eGeMAPS disentanglement results on both SAE codes and original outputs.",
                     verdict=UNTESTABLE, **base)
    n = len(eg)
    top_n = int(eg["top_n"].max()) if "top_n" in eg else 10
    higher = int((eg["completeness_mean"] > eg["completeness_mean_orig"]).sum())
    fewer = int((eg["effective_codes_mean"] < eg["effective_codes_mean_orig"]).sum())
    sentence = (
        f"Top-{top_n} completeness (eGeMAPS) is higher for SAE codes than for the original output in {higher} of {n} "
        f"(node, sparsity) pairs (mean {eg['completeness_mean'].mean():.3f} vs "
        f"{eg['completeness_mean_orig'].mean():.3f}); the effective number of codes per attribute, exp(H), which "
        f"does not depend on the code count, is lower in {fewer} of {n} (mean {eg['effective_codes_mean'].mean():.1f} "
        f"vs {eg['effective_codes_mean_orig'].mean():.1f} codes)."
    )
    fac = j[j["target"] == "factors"]
    if not fac.empty:
        sentence += (f" On the true factors: higher completeness in "
                     f"{int((fac['completeness_mean'] > fac['completeness_mean_orig']).sum())} of {len(fac)}, fewer "
                     f"effective codes in {int((fac['effective_codes_mean'] < fac['effective_codes_mean_orig']).sum())} "
                     f"of {len(fac)}.")
    fh, ff = higher / n, fewer / n
    if fh >= majority and ff >= majority:
        verdict = SUPPORTED
    elif fh <= 1 - majority and ff <= 1 - majority:
        verdict = NOT_SUPPORTED
    else:
        verdict = MIXED
    numbers = {"pairs": n, "completeness_higher": higher, "effective_codes_fewer": fewer,
               "sae_completeness_mean": float(eg["completeness_mean"].mean()),
               "original_completeness_mean": float(eg["completeness_mean_orig"].mean())}
    return Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)


# ---------------------------------------------------------------- claim 4


def claim_layers(cats: pd.DataFrame) -> Claim:
    paper = ("Pitch attributes are best explained in early layers; formant / MFCC (phonetic, timbre) attributes in "
             "later layers.")
    rule = ("per model, compare the first and last analysed layer: it follows the pattern when pitch attributes in the "
            "top-n (by R², eGeMAPS, mean over representations) do not increase, formant/MFCC ones do not decrease, and "
            "one of them changes; supported when every model follows it, not supported when none does, mixed otherwise.")
    base = dict(number=4, title="Pitch early, phonetics late", paper=paper, rule=rule, table="categories",
                figure="category_counts")
    c = cats[(cats["target"] == "egemaps") & (cats["ranking"] == "r2")]
    parts, follows, numbers = [], [], {}
    for model in dict.fromkeys(c["model"]):
        m = c[c["model"] == model]
        layers = sorted(m["layer"].unique())
        if len(layers) < 2:
            continue
        first, last = int(layers[0]), int(layers[-1])

        def count(layer, categories):
            node = m[(m["layer"] == layer) & (m["category"].isin(categories))]
            return float(node.groupby("rep")["count"].sum().reindex(m["rep"].unique(), fill_value=0).mean())

        p1, p2 = count(first, ("pitch",)), count(last, ("pitch",))
        f1, f2 = count(first, PHONETIC), count(last, PHONETIC)
        ok = p1 >= p2 and f2 >= f1 and (p1 > p2 or f2 > f1)
        follows.append(ok)
        numbers[model] = {"first_layer": first, "last_layer": last, "pitch": [p1, p2], "formant_mfcc": [f1, f2]}
        parts.append(f"{model}: pitch {p1:.1f} at layer {first} vs {p2:.1f} at layer {last}, "
                     f"formant/MFCC {f1:.1f} vs {f2:.1f}")
    if not follows:
        return Claim(sentence="No model has two analysed layers, so early and late layers cannot be compared.",
                     verdict=UNTESTABLE, **base)
    top_n = int(c.groupby(["model", "layer", "rep"])["count"].sum().max())
    sentence = (f"Counting the top-{top_n} eGeMAPS attributes by R² (mean over the original output and SAE codes) — "
                + "; ".join(parts) + f". {sum(follows)} of {len(follows)} models follow the early-pitch, "
                f"late-phonetic pattern.")
    verdict = SUPPORTED if all(follows) else NOT_SUPPORTED if not any(follows) else MIXED
    return Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)


def paper_level(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The tables cut to the level the paper's claims are about: clip SAEs (and the original), when present.

    A study with frame SAEs only answers them for its frame SAEs instead; the
    frames section compares the two levels.
    """
    out = {}
    for name, df in tables.items():
        if "level" in df and (df["level"] == "clip").any():
            df = df[df["level"] != "frame"].reset_index(drop=True)
        out[name] = df
    return out


def core_claims(tables: dict[str, pd.DataFrame]) -> list[Claim]:
    """The four claims of PAPER.md, in its order, answered from the aggregate tables (clip level)."""
    tables = paper_level(tables)
    return [
        claim_task_information(tables["probe"]),
        claim_reconstruction(tables["reconstruction"]),
        claim_disentanglement(tables["disentanglement"]),
        claim_layers(tables["categories"]),
    ]


def answer_claims(tables: dict[str, pd.DataFrame], sections=None) -> list[Claim]:
    """Every registered section's claims, in registry order (the core's four first).

    A section whose tables are not all in `tables` is skipped: the study did not run it.
    """
    from audiosae.report.registry import SECTIONS

    out: list[Claim] = []
    for section in SECTIONS if sections is None else sections:
        func = section.claim_function()
        if func is not None and all(t in tables for t in section.tables):
            out.extend(func(tables))
    return out
