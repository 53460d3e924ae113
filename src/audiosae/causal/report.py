"""The causal atlas's report section: the erasure and steering tables, the erasure figure, two claims.

Tables (one row each, long format):

- ``erasure``: per (node, SAE, target, class) the clean output-level probe's one-vs-rest
  balanced accuracy and interval, the status (erased / not erased / untestable), the
  smallest n and share of live latents at which the top-ranked removal brings the class
  to chance, the same for random removal, and the other classes' loss at that n;
- ``erasure_curves``: every point of the curves (top-ranked and random removal);
- ``steering``: per tested card its label, what the label predicts at the output, α,
  the effect at the largest multiple with its interval, the random directions' mean and
  standard deviation, the badge and the card's line.

Claims (each judged against the random-weights twin by `audiosae.controls.claims.with_twin`):
"a concept lives in a few latents" and "atlas labels are causal".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from audiosae.bootstrap import percentile_interval, resample_means
from audiosae.causal.erasure import CURVE_COLUMNS, ERASED, SUMMARY_COLUMNS, UNTESTABLE
from audiosae.causal.steering import CAUSAL

FEW_SHARE = 0.27  # AudioSAE: erasing a concept takes removing 19-27 % of the features
NODE = ["model", "twin", "layer", "rep", "level", "sparsity"]
STEERING_COLUMNS = NODE + ["unit", "label", "kind", "column", "value", "sign", "alpha", "multiple", "effect", "lo", "hi",
                           "random_mean", "random_sd", "badge", "line"]


def _node(doc: dict, rep: str, res: dict) -> dict:
    from audiosae.layout import Rep

    r = Rep.parse(rep)
    return {"model": doc["model"], "twin": bool(doc.get("twin")), "layer": int(doc["layer"]), "rep": rep,
            "level": res.get("level", r.level), "sparsity": r.sparsity_value}


def build_tables(paths) -> dict[str, pd.DataFrame]:
    from audiosae.jsonio import read_json

    summary, curves, steering = [], [], []
    for path in paths:
        doc = read_json(path)
        for rep, res in doc["reps"].items():
            node = _node(doc, rep, res)
            if res.get("erasure"):
                summary += [{**node, **row} for row in res["erasure"]["summary"]]
                curves += [{**node, **row} for row in res["erasure"]["curves"]]
            for card in res.get("steering", []):
                steering.append({**node, **{k: card.get(k) for k in STEERING_COLUMNS if k not in node}})
    return {"erasure": pd.DataFrame(summary, columns=NODE + SUMMARY_COLUMNS),
            "erasure_curves": pd.DataFrame(curves, columns=NODE + CURVE_COLUMNS),
            "steering": pd.DataFrame(steering, columns=STEERING_COLUMNS)}


def build(inputs: dict, params: dict) -> dict[str, pd.DataFrame]:
    """The section's tables (the report sections' contract, audiosae.report.registry)."""
    return build_tables(inputs["causal"])


# ---------------------------------------------------------------- figure


def draw(tables: dict, inputs: dict, params: dict, out_dir, names) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    captions = {}
    if "erasure_curves" in names:
        cur, summ = tables["erasure_curves"], tables["erasure"]
        nodes = list(dict.fromkeys(zip(cur["model"], cur["layer"]))) if not cur.empty else []
        n = max(1, len(nodes))
        cols = min(3, n)
        rows = -(-n // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        colours = {"clip": "#0969da", "frame": "#bf3989"}
        for ax, (model, layer) in zip(axes.flat, nodes):
            testable = summ[(summ["model"] == model) & (summ["layer"] == layer) & (summ["status"] != UNTESTABLE)]
            keys = set(zip(testable["rep"], testable["target"], testable["class"]))
            part = cur[(cur["model"] == model) & (cur["layer"] == layer)]
            part = part[[k in keys for k in zip(part["rep"], part["target"], part["class"])]]
            for (rep, level), g in part.groupby(["rep", "level"], sort=False):
                for removal, style in (("top", "-"), ("random", "--")):
                    gg = g[g["removal"].isin([removal, "none"])]
                    mean = gg.groupby("share")["balanced_accuracy"].mean()
                    ax.plot(mean.index, mean.to_numpy(), style, marker="o", ms=3, color=colours.get(level, "k"),
                            label=f"{rep} {'top-ranked' if removal == 'top' else 'random'}")
            ax.axhline(0.5, color="#8c959f", lw=0.8)
            ax.axvline(FEW_SHARE, color="#8c959f", lw=0.8, ls=":")
            ax.set_title(f"{model} layer {layer} ({len({k[1:] for k in keys})} testable classes)", fontsize=9)
            ax.set_xlabel("share of live latents removed")
            ax.set_ylabel("one-vs-rest balanced accuracy")
            ax.set_ylim(0.3, 1.02)
            if len(keys):
                ax.legend(fontsize=6)
        for ax in list(axes.flat)[len(nodes):]:
            ax.axis("off")
        if not nodes:
            axes.flat[0].text(0.5, 0.5, "no erasure results", ha="center")
        fig.tight_layout()
        for ext in ("png", "pdf"):
            fig.savefig(out_dir / f"erasure_curves.{ext}", dpi=130)
        plt.close(fig)
        captions["erasure_curves"] = (
            "Concept erasure per node: the output-level probe's one-vs-rest balanced accuracy of a class (mean over "
            "the node's testable classes) as the class's top-ranked latents (train AUROC, solid) or random live "
            "latents (dashed, mean over draws) are removed inside the network with the SAE's error term kept; "
            f"grey: chance (0.5) and AudioSAE's {100 * FEW_SHARE:.0f} %.")
    return captions


# ---------------------------------------------------------------- claims


def _interval(values: np.ndarray, seed: int = 42) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    lo, hi = percentile_interval(resample_means(v, 1000, seed))
    return float(v.mean()), lo, hi


def claim_few_latents(tables: dict[str, pd.DataFrame], few: float = FEW_SHARE, majority: float = 0.75):
    from audiosae.report.claims import MIXED, NOT_SUPPORTED, SUPPORTED, UNTESTABLE as U, Claim

    df = tables.get("erasure", pd.DataFrame())
    paper = ("(Beyond the paper; AudioSAE's causal test) A concept lives in a few latents: removing a class's "
             f"top-ranked SAE latents inside the network takes it to chance at a small share of the live latents "
             f"(AudioSAE: 19–27 %), while removing as many random latents does not.")
    rule = (f"per (node, SAE, target class) whose clean output-level probe tells the class from the rest (interval "
            f"above 0.5): it lives in a few latents when the top-ranked removal reaches chance at a share ≤ "
            f"{100 * few:.0f} % of the live latents and random removal of as many latents does not; supported when "
            f"at least {100 * majority:.0f} % of those classes do (effect: that share, bootstrap interval over the "
            f"classes), not supported at {100 * (1 - majority):.0f} % or fewer, mixed otherwise.")
    base = dict(number=10, title="A concept lives in a few latents", paper=paper, rule=rule,
                table="erasure", figure="erasure_curves")
    if df.empty:
        return Claim(sentence="No erasure results in this run.", verdict=U, **base)
    test = df[df["status"] != UNTESTABLE]
    if test.empty:
        return Claim(sentence=f"None of the {len(df)} (node, SAE, class) rows is testable: the clean output-level "
                              "probe is at chance for every class.", verdict=U, **base)
    erased_share = test["erased_share"].astype(float)
    random_share = test["random_erased_share"].astype(float)
    few_ok = (test["status"] == ERASED) & (erased_share <= few) & ~(random_share <= erased_share)
    est, lo, hi = _interval(few_ok.to_numpy(dtype=float))
    per_node = []
    for (m, layer, rep), g in test.assign(ok=few_ok.to_numpy()).groupby(["model", "layer", "rep"], sort=False):
        med = g.loc[g["status"] == ERASED, "erased_share"].median()
        per_node.append(f"{m} layer {int(layer)} {rep}: {int(g['ok'].sum())} of {len(g)} classes in a few latents, "
                        f"{int((g['status'] == ERASED).sum())} erased at all"
                        + (f" (median share {100 * med:.0f} %)" if np.isfinite(med) else ""))
    sentence = (f"{int(few_ok.sum())} of {len(test)} testable classes ({100 * est:.0f} % [{100 * lo:.0f}, "
                f"{100 * hi:.0f}]) reach chance when at most {100 * few:.0f} % of the live latents, ranked by their "
                f"train AUROC, are removed, and not when as many random latents are; {int((df['status'] == U).sum())} "
                f"rows untestable. " + "; ".join(per_node) + ".")
    verdict = SUPPORTED if est >= majority else NOT_SUPPORTED if est <= 1 - majority else MIXED
    return Claim(sentence=sentence, verdict=verdict, numbers={"effect": [est, lo, hi], "testable": int(len(test)),
                                                             "few": int(few_ok.sum())}, **base)


def claim_causal_labels(tables: dict[str, pd.DataFrame], majority: float = 0.5):
    from audiosae.report.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, UNTESTABLE as U, Claim

    df = tables.get("steering", pd.DataFrame())
    paper = ("(Beyond the paper; the causal twin of claim 5) Atlas labels are causal: steering a labelled SAE latent "
             "inside the network moves the output its label predicts, beyond random directions of the same norm — "
             "more often than for the layer's own units.")
    rule = (f"per tested card (the top labelled cards of each page) the badge of audiosae.causal.steering; among SAE "
            f"latents' cards that can be tested, the share that is causal (bootstrap interval over cards): supported "
            f"when its lower end is at least {100 * majority:.0f} %, not supported when its upper end is below, "
            "inconclusive otherwise; the layer units' share and the difference are reported beside it.")
    base = dict(number=11, title="Atlas labels are causal", paper=paper, rule=rule,
                table="steering", figure="erasure_curves")
    if df.empty:
        return Claim(sentence="No steering results in this run.", verdict=U, **base)
    testable = df[df["badge"] != "untestable"]
    sae = testable[testable["level"] != "original"]
    units = testable[testable["level"] == "original"]
    if sae.empty:
        return Claim(sentence=f"No SAE latent card could be tested ({len(df)} cards, "
                              f"{int((df['badge'] == 'untestable').sum())} untestable).", verdict=U, **base)
    est, lo, hi = _interval((sae["badge"] == CAUSAL).to_numpy(dtype=float))
    u_est, u_lo, u_hi = _interval((units["badge"] == CAUSAL).to_numpy(dtype=float))
    by_level = "; ".join(f"{lvl}: {int((g['badge'] == CAUSAL).sum())} of {len(g)}"
                         for lvl, g in testable.groupby("level", sort=False))
    sentence = (f"{int((sae['badge'] == CAUSAL).sum())} of {len(sae)} testable SAE-latent cards are causal "
                f"({100 * est:.0f} % [{100 * lo:.0f}, {100 * hi:.0f}]) against "
                + (f"{int((units['badge'] == CAUSAL).sum())} of {len(units)} layer-unit cards ({100 * u_est:.0f} % "
                   f"[{100 * u_lo:.0f}, {100 * u_hi:.0f}])" if len(units) else "no testable layer-unit card")
                + f"; by level {by_level}; {int((df['badge'] == 'untestable').sum())} of {len(df)} cards untestable.")
    verdict = SUPPORTED if lo >= majority else NOT_SUPPORTED if hi < majority else INCONCLUSIVE
    return Claim(sentence=sentence, verdict=verdict,
                 numbers={"effect": [est, lo, hi], "units": [u_est, u_lo, u_hi], "sae_cards": int(len(sae)),
                          "unit_cards": int(len(units))}, **base)


def causal_claims(tables: dict[str, pd.DataFrame]) -> list:
    return [claim_few_latents(tables), claim_causal_labels(tables)]
