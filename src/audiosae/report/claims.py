"""The paper's four claims, answered from this run's tables.

Every sentence is computed from the numbers (nothing is written in advance), and
each claim gets a verdict — ``supported``, ``mixed``, ``not supported``,
``inconclusive`` when the bootstrap intervals are too wide to say, or
``untestable`` when the run lacks what the claim needs (one sparsity, one layer)
— by a rule stated next to it, so a reader can check it. Claim 1 is answered once
per probe target (the paper asks it of one label), from the paired intervals of
the SAE-minus-original accuracy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from audiosae.report.aggregate import ORIGINAL

SUPPORTED, MIXED, NOT_SUPPORTED, UNTESTABLE = "supported", "mixed", "not supported", "untestable"
INCONCLUSIVE = "inconclusive"
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
    rows: dict = field(default_factory=dict)  # the rows of `table` it is about ({column: value}; empty: all)
    key: str = ""  # unique id (anchors); default str(number)

    def __post_init__(self):
        self.key = self.key or str(self.number)

    @property
    def label(self) -> str:
        """'1' or, for a claim about some rows of its table, '1 (technique)'."""
        return f"{self.number}" + (f" ({', '.join(str(v) for v in self.rows.values())})" if self.rows else "")

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


def _pts(x: float) -> str:
    return f"{100 * float(x):+.1f}"


def seed_effects(at_top: pd.DataFrame, seed_spread: pd.DataFrame | None, metric: str, level: str | None = None,
                 column: str = "accuracy", base: str = "accuracy_orig") -> dict[int, float] | None:
    """{seed: mean over `at_top`'s nodes of (the seed's `metric` − `base`)}: the claim's effect recomputed with each
    SAE seed's value where the node was trained with several seeds (the seed_spread table of the controls section),
    the default seed's elsewhere; None when no node of `at_top` has seeds."""
    if seed_spread is None or seed_spread.empty or at_top.empty:
        return None
    top = float(at_top["sparsity"].iloc[0])
    if level is None:  # the SAEs' level: clip, or frame in a study with frame SAEs only
        level = str(at_top["level"].iloc[0]) if "level" in at_top else "clip"
    s = seed_spread[(seed_spread["metric"] == metric) & (seed_spread["level"] == level)
                    & np.isclose(seed_spread["sparsity"].astype(float), top)]
    per = {}
    for _, row in s.iterrows():
        seeds = [int(x) for x in str(row["seeds"]).split(",")]
        values = [float(x) for x in str(row["values"]).split(",")]
        per[(row["model"], int(row["layer"]))] = dict(zip(seeds, values))
    keys = [(m, int(l)) for m, l in zip(at_top["model"], at_top["layer"])]
    if not any(k in per for k in keys):
        return None
    seeds = sorted({seed for v in per.values() for seed in v})
    out = {}
    for seed in seeds:
        value = [per[k].get(seed, np.nan) if k in per else own for k, own in zip(keys, at_top[column])]
        out[seed] = float(np.nanmean(np.asarray(value, float) - at_top[base].to_numpy(float)))
    return out


def seed_spread_note(seed_spread: pd.DataFrame | None, metric: str, what: str, level: str = "clip",
                     scale: float = 1.0, unit: str = "") -> tuple[str, dict]:
    """(' Over SAE seeds …, <what> varies by at most … at <node> (mean range …).', numbers) from the controls'
    seed_spread table, for the claims whose statistic is a per-node metric of the SAE; ('', {}) without seeds."""
    if seed_spread is None or seed_spread.empty:
        return "", {}
    s = seed_spread[(seed_spread["metric"] == metric) & (seed_spread["level"] == level)].dropna(subset=["min", "max"])
    if s.empty:
        return "", {}
    ranges = (s["max"].astype(float) - s["min"].astype(float)) * scale
    widest = s.loc[ranges.idxmax()]
    sparsities = ", ".join(_g(x) for x in sorted(s["sparsity"].unique()))
    note = (f" Over SAE seeds {str(widest['seeds']).replace(',', ', ')} (sparsity {sparsities}), a node's {what} "
            f"varies by at most {ranges.max():.3g}{unit} ({_node(widest)}; mean range {ranges.mean():.3g}{unit} over "
            f"{len(s)} node{'' if len(s) == 1 else 's'}).")
    return note, {"seed_range_max": float(ranges.max()), "seed_range_mean": float(ranges.mean()),
                  "seed_nodes": int(len(s))}


def verdict_counts(verdicts: dict, n: int) -> str:
    """'higher at 1, lower at 0, no change (identical on every test clip) at 2, inconclusive (interval holds 0) at 1
    of 4 nodes' from {delta_verdict: count}; 'no change' only where some node has it."""
    from audiosae.bootstrap import NO_CHANGE

    parts = [f"higher at {verdicts.get('higher', 0)}", f"lower at {verdicts.get('lower', 0)}"]
    if verdicts.get(NO_CHANGE):
        parts.append(f"{NO_CHANGE} at {verdicts[NO_CHANGE]}")
    parts.append(f"inconclusive (interval holds 0) at {verdicts.get('inconclusive', 0)} of {n} nodes")
    return ", ".join(parts)


def claim_task_information(probe: pd.DataFrame, tol: float = ACCURACY_TOLERANCE_POINTS,
                           target: str | None = None, seed_spread: pd.DataFrame | None = None) -> Claim:
    """Claim 1 for one probe target (the first in the table when None), judged on paired intervals.

    Per node, at the sparsest SAE, the paired bootstrap interval [lo, hi] of SAE minus
    original accuracy decides: kept when lo >= -tol (a loss beyond `tol` points is ruled
    out), lost when hi < -tol (a loss beyond `tol` is certain), undecided otherwise.
    Its effect (for the judgment against the twin) is the mean SAE-minus-original
    accuracy over the nodes, with each SAE seed's where `seed_spread` has several.
    """
    if target is None and "target" in probe and len(probe):
        target = str(probe["target"].iloc[0])
    part = probe[probe["target"] == target] if target is not None and "target" in probe else probe
    what = target or "the task"
    if target in (None, "technique"):
        paper = ("SAE codes keep the task information: a linear probe on SAE codes classifies singing technique "
                 "about as well as a probe on the original layer output, even at 95–99 % sparsity.")
    else:  # the paper asks it of singing technique only; here of this run's label
        paper = (f"(The paper's claim 1, asked of '{target}'.) SAE codes keep the {target} information: a linear "
                 f"probe on SAE codes classifies {target} about as well as a probe on the original layer output, "
                 f"even at 95–99 % sparsity.")
    rule = (f"per node at the sparsest SAE, the paired 95 % bootstrap interval of SAE minus original accuracy decides: "
            f"kept when its lower end is above −{tol:g} points, lost when its upper end is below −{tol:g}; supported "
            f"when every node is kept, not supported when every node is lost, mixed when some are kept and some lost, "
            f"inconclusive when no node is lost but some interval reaches past −{tol:g} points.")
    number_key = f"1-{target}" if target else "1"
    base = dict(number=1, title=f"SAE codes keep the {what} information" if target else
                "SAE codes keep the task information", paper=paper, rule=rule, table="probe",
                figure="probe_accuracy_vs_sparsity", rows={"target": target} if target else {}, key=number_key)
    j = _against_original(part, ["accuracy", "accuracy_lo", "accuracy_hi"], keys=("target", "model", "layer")
                          if "target" in part else ("model", "layer"))
    if j.empty:
        return Claim(sentence=f"No {what} probe results on both SAE codes and original outputs of the same node.",
                     verdict=UNTESTABLE, **base)
    top = float(j["sparsity"].max())
    at_top = j[j["sparsity"] == top].copy()
    lo_pts, hi_pts = 100 * at_top["delta_accuracy_lo"], 100 * at_top["delta_accuracy_hi"]
    kept = lo_pts >= -tol
    lost = hi_pts < -tol
    n, n_kept, n_lost = len(at_top), int(kept.sum()), int(lost.sum())
    worst = at_top.loc[at_top["delta_accuracy"].idxmin()]
    worst_pts = round(100 * float(worst["delta_accuracy"]), 1)
    change = ("the largest drop from the original output is" if worst_pts < 0 else
              "no node loses accuracy; the smallest change is" if worst_pts == 0 else
              "every node gains accuracy; the smallest gain is")
    sentence = (
        f"{target + ': ' if target else ''}at sparsity {_g(top)}, the sparsest SAE of this run, {change} "
        f"{_pts(worst['delta_accuracy'])} points (paired 95 % interval "
        f"[{_pts(worst['delta_accuracy_lo'])}, {_pts(worst['delta_accuracy_hi'])}]) at {_node(worst)} "
        f"({100 * worst['accuracy_orig']:.1f} % [{100 * worst['accuracy_lo_orig']:.1f}, "
        f"{100 * worst['accuracy_hi_orig']:.1f}] → {100 * worst['accuracy']:.1f} % [{100 * worst['accuracy_lo']:.1f}, "
        f"{100 * worst['accuracy_hi']:.1f}]). A loss of more than {tol:g} points is ruled out at {n_kept} of {n} "
        f"nodes and certain at {n_lost}."
    )
    verdicts = at_top["delta_verdict"].value_counts().to_dict() if "delta_verdict" in at_top else {}
    if verdicts:
        sentence += " Whether SAE codes do better or worse than the original: " + verdict_counts(verdicts, n) + "."
    if "n_test" in at_top and at_top["n_test"].notna().any():
        sentence += f" Intervals resample the {int(at_top['n_test'].max())} test clips."
    if "n_classes" in part and part["n_classes"].notna().any():
        chance = 100 / float(part["n_classes"].max())
        orig = part[part["rep"] == ORIGINAL]
        sentence += (f" For scale: chance is {chance:.1f} %, the original outputs reach "
                     f"{100 * orig['accuracy'].min():.1f}–{100 * orig['accuracy'].max():.1f} %.")
        near = int((100 * orig["accuracy_hi"] <= chance + tol).sum()) if "accuracy_hi" in orig else 0
        if near:
            sentence += (f" {near} of {len(orig)} original probes are within {tol:g} points of chance even at the top "
                         f"of their interval, so the comparison says little there.")
    if top < 0.95:
        sentence += f" (The paper's claim is about 0.95–0.99; this run stops at {_g(top)}.)"
    if n_kept == n:
        verdict = SUPPORTED
    elif n_lost == n:
        verdict = NOT_SUPPORTED
    elif n_lost:
        verdict = MIXED
    else:
        verdict = INCONCLUSIVE
    numbers = {"target": target, "sparsity": top, "worst_node": _node(worst),
               "worst_delta_points": 100 * float(worst["delta_accuracy"]),
               "worst_delta_interval_points": [100 * float(worst["delta_accuracy_lo"]),
                                               100 * float(worst["delta_accuracy_hi"])],
               "nodes": n, "nodes_kept": n_kept, "nodes_lost": n_lost,
               "difference_verdicts": {k: int(v) for k, v in verdicts.items()},
               "effect": [float(at_top[c].mean()) for c in ("delta_accuracy", "delta_accuracy_lo",
                                                            "delta_accuracy_hi")]}
    seeds = seed_effects(at_top, seed_spread, f"accuracy_{target}") if target else None
    if seeds:
        numbers["effect_seeds"] = seeds
        sentence += (f" Over SAE seeds {', '.join(map(str, seeds))}, the mean change over nodes is "
                     + ", ".join(f"{_pts(v)}" for v in seeds.values()) + " points.")
    return Claim(sentence=sentence, verdict=verdict, numbers=numbers, **base)


def claims_task_information(probe: pd.DataFrame, tol: float = ACCURACY_TOLERANCE_POINTS,
                            seed_spread: pd.DataFrame | None = None) -> list[Claim]:
    """Claim 1 for every probe target, in the table's order (with its spread over SAE seeds from `seed_spread`)."""
    targets = list(dict.fromkeys(probe["target"])) if "target" in probe and len(probe) else [None]
    return [claim_task_information(probe, tol, t, seed_spread) for t in targets]


# ---------------------------------------------------------------- claim 2


def claim_reconstruction(rec: pd.DataFrame, sharp: float = SHARP_RATIO,
                         seed_spread: pd.DataFrame | None = None) -> Claim:
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
    note, seeds = seed_spread_note(seed_spread, "test_fvu", "test FVU",
                                   level=str(rec["level"].iloc[0]) if "level" in rec else "clip")
    sentence += note
    numbers.update(seeds)
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
    """The tables cut to the level the paper's claims are about: clip SAEs (and the original), when present;
    never external SAEs (rep ext-<name>).

    A study with frame SAEs only answers them for its frame SAEs instead; the
    frames section compares the two levels.
    """
    out = {}
    for name, df in tables.items():
        if "level" in df:  # SAEs trained elsewhere (sae.external) are analysed in the tables, not in the paper's claims
            df = df[df["level"] != "external"].reset_index(drop=True)
        if "level" in df and (df["level"] == "clip").any():
            df = df[df["level"] != "frame"].reset_index(drop=True)
        out[name] = df
    return out


def claim_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The rows a claim's sentence is computed from, before its own level rule: the trained models' (their
    random-weights twins are judged beside, `audiosae.controls.claims.with_twin`). A figure's caption that states a
    claim's numbers calls the claim's function on these rows, so the sentence and the caption read the same."""
    from audiosae.controls.claims import split_twin

    return split_twin(tables)[0]


def scope_note(df: pd.DataFrame) -> str:
    """Which representations of `df` a claim's numbers count (clip-level SAEs trained here, as `paper_level` and
    claim 5 keep) and which they leave out, named: imported SAEs, frame-level SAEs, random-weights twins."""
    from audiosae.encoders.twin import is_twin_name

    left = []
    if "level" in df and (df["level"] == "external").any():
        names = sorted(set(df.loc[df["level"] == "external", "rep"].astype(str)))
        left.append(f"imported SAE{'s' if len(names) > 1 else ''} {', '.join(names)}")
    if "level" in df and (df["level"] == "frame").any() and (df["level"] == "clip").any():
        left.append("frame-level SAEs")
    if "model" in df and df["model"].astype(str).map(is_twin_name).any():
        left.append("random-weights twins")
    counted = "clip-level SAEs trained here" if "level" in df and (df["level"] == "clip").any() else \
        "the SAEs trained here"
    return counted + (f"; not counted: {', '.join(left)}" if left else "")


def core_claims(tables: dict[str, pd.DataFrame]) -> list[Claim]:
    """The four claims of PAPER.md, in its order, answered from the aggregate tables (clip level)."""
    notes = {name: scope_note(df) for name, df in tables.items()}  # what paper_level leaves out, named
    tables = paper_level(tables)
    claims = [
        *claims_task_information(tables["probe"], seed_spread=tables.get("seed_spread")),
        claim_reconstruction(tables["reconstruction"], seed_spread=tables.get("seed_spread")),
        claim_disentanglement(tables["disentanglement"]),
        claim_layers(tables["categories"]),
    ]
    for c in claims:
        if "not counted" in notes.get(c.table, ""):
            c.sentence += f" Counted: {notes[c.table]}."
    return claims


def answer_claims(tables: dict[str, pd.DataFrame], sections=None) -> list[Claim]:
    """Every registered section's claims, in registry order (the core's four first), each judged against the
    random-weights twin's rows when the tables have them (`audiosae.controls.claims.with_twin`).

    A section whose tables are not all in `tables` is skipped: the study did not run it.
    """
    from audiosae.controls.claims import with_twin
    from audiosae.report.registry import SECTIONS

    out: list[Claim] = []
    for section in SECTIONS if sections is None else sections:
        func = section.claim_function()
        if func is not None and all(t in tables for t in section.tables):
            out.extend(with_twin(func, tables))  # judged against the random-weights twin where the study has one
    return out
