"""Where the report learns what each analysis stage contributes: one `Section` per stage.

A stage that wants its results in ``results/report.html`` (and in
``snakemake --report``) registers ONE section in `SECTIONS` below, and makes its
own rule(s) write, for every name it registers:

- ``results/tables/<table>.csv`` and ``.md`` (long format, one row per model,
  layer and rep where that makes sense; :func:`audiosae.report.aggregate.write_table`
  writes both);
- ``results/figures/<figure>.png`` and ``.pdf``;
- ``results/figures/captions/<section>.json``: ``{figure: one-line caption}``;
- ``report/tables/<table>.rst`` and ``report/figures/<figure>.rst`` in the
  repository: the captions ``snakemake --report`` shows (a test checks they exist).

The report rule's inputs are derived from this registry (``rules/common.smk``),
its page renders the sections in registry order, and `answer_claims` asks each
section's claim function, so adding a stage touches no report module: one
library module, one script, one ``.smk`` and one entry here.

This module imports nothing heavy: the Snakefile reads it while building the DAG.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping


@dataclass(frozen=True)
class Section:
    """What one analysis stage puts into the report."""

    name: str
    """Short id: file names (``captions/<name>.json``) and anchors use it."""
    title: str
    """Heading of the stage's part of the report."""
    tables: Mapping[str, str]
    """Table name -> one-line note shown above it in the report."""
    figures: Mapping[str, str] = field(default_factory=dict)
    """Figure name -> subcategory in ``snakemake --report`` (e.g. "Sparsity sweeps")."""
    build: str | None = None
    """``"module:function"`` building the section's tables: ``build(inputs, params) -> {table: DataFrame}`` with the
    rule's named inputs (lists of paths) and params; it returns exactly the tables registered here."""
    draw: str | None = None
    """``"module:function"`` drawing its figures: ``draw(tables, inputs, params, figures_dir, names) -> {figure:
    caption}``, writing ``<figures_dir>/<name>.png`` and ``.pdf`` for every name asked."""
    claims: str | None = None
    """``"module:function"``: called with the dict of every registered table (name -> DataFrame),
    returns a list of `audiosae.report.claims.Claim`. None: the stage answers no claim."""
    claim_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Table name -> the columns shown under a claim that cites it (default: every column)."""
    requires: tuple[str, ...] = ()
    """Study flags (see `flags`) the whole section needs; without them it is left out."""
    figure_requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Figure name -> extra flags that one figure needs (e.g. the synthetic corpus's true factors)."""
    pages: str | None = None
    """Path pattern of explore pages the report links, with ``{model}``, ``{layer}``, ``{rep}``
    (expanded over every analysed node and representation): an HTML file, or a folder (a rule's
    ``directory()`` output, which the report can depend on where it cannot depend on a file
    inside it) whose ``index.html`` is linked, e.g. ``results/atlas/{model}/layer{layer}/{rep}``."""

    def enabled(self, flags: Iterable[str]) -> bool:
        return set(self.requires) <= set(flags)

    def figure_names(self, flags: Iterable[str]) -> list[str]:
        flags = set(flags)
        return [f for f in self.figures if set(self.figure_requires.get(f, ())) <= flags]

    def claim_function(self) -> Callable | None:
        return _function(self.claims)

    def build_function(self) -> Callable | None:
        return _function(self.build)

    def draw_function(self) -> Callable | None:
        return _function(self.draw)


def _function(spec: str | None) -> Callable | None:
    if spec is None:
        return None
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


CORE = Section(
    name="core",
    title="The paper's study: reconstruction, probes, disentanglement",
    tables={
        "reconstruction": "SAE reconstruction on the valid and test clips, one row per (model, layer, sparsity).",
        "probe": "Linear probes per target on the test clips, with 95 % bootstrap intervals [lo, hi] over them; "
                 "delta_* is the difference to the original representation, its interval paired (same resampled "
                 "clips) and its verdict higher, lower, inconclusive (the interval holds 0) or no change (identical on every "
                 "test clip: estimate and interval all 0, the two probes right on the same clips).",
        "confusion": "Test confusion matrices of the probes (first seed), one row per (target, true, predicted) cell.",
        "disentanglement": "Lasso-based disentanglement per target set; r2 and completeness are over the top-n "
                           "attributes by R², best_completeness over the top-n by completeness.",
        "attributes": "Every attribute's in-sample and cross-validated R², completeness and effective codes.",
        "factors": "The top-n attributes of every node, ranked by R² and by completeness, with their categories.",
        "categories": "How many of the top-n attributes fall in each category.",
    },
    figures={
        "probe_accuracy_vs_sparsity": "Sparsity sweeps",
        "fvu_vs_sparsity": "Sparsity sweeps",
        "r2_vs_sparsity": "Sparsity sweeps",
        "completeness_vs_sparsity": "Sparsity sweeps",
        "category_counts": "Attributes",
        "confusion_best_node": "Probes",
        "completeness_vs_effective_codes": "Attributes",
        "factor_importance": "Attributes",
    },
    figure_requires={"factor_importance": ("synthetic",)},
    build="audiosae.report.aggregate:build",
    draw="audiosae.report.figures:draw",
    claims="audiosae.report.claims:core_claims",
    claim_columns={
        "probe": ("target", "model", "layer", "rep", "accuracy", "accuracy_lo", "accuracy_hi", "accuracy_std",
                  "balanced_accuracy", "macro_f1", "delta_accuracy", "delta_accuracy_lo", "delta_accuracy_hi",
                  "delta_verdict"),
        "reconstruction": ("model", "layer", "rep", "k", "test_mse", "test_fvu", "test_cosine", "test_l0",
                           "test_dead_fraction"),
        "disentanglement": ("model", "layer", "rep", "target", "r2_mean", "r2_std", "completeness_mean",
                            "completeness_std", "effective_codes_mean", "dci_disentanglement",
                            "delta_completeness_mean", "delta_effective_codes_mean"),
    },
)

ATLAS = Section(
    name="atlas",
    title="Latent atlas: what every unit encodes",
    tables={
        "interpretable": "Per (model, layer, rep): live units (neither dead nor constant), those with a clear label "
                         "(one-vs-rest AUROC ≥ atlas.auroc_threshold for a class of a label column, or |Spearman ρ| ≥ "
                         "atlas.rho_threshold with an attribute) and their share; delta_share = SAE − original.",
        "mcc": "Synthetic corpus only (empty otherwise): per (model, layer, rep), the MCC — mean |Spearman ρ| of the "
               "true factors matched one-to-one to units (Hungarian) — and the mean cross-validated ridge read-out R² "
               "of the factors from the whole representation (folds grouped by the manifest's group).",
        "ground_truth": "Synthetic corpus only (empty otherwise): each true factor's matched unit, its ρ, and the "
                        "factor's ridge read-out R², per (model, layer, rep).",
        "ablation": "Clip-level SAEs only, ours and imported ones (empty otherwise): per (model, layer, rep, class "
                    "of the first probe target), the test recall of the original layer's probe on the SAE "
                    "reconstructions, its drop when the class's top-m latents (by AUROC on the other clips) are zeroed, the mean drop of the other "
                    "classes, the same for m random live latents, and specificity = drop_class − drop_others.",
    },
    figures={
        "interpretable_share_vs_sparsity": "Atlas",
        "ground_truth_vs_sparsity": "Atlas",
        "ground_truth_factors": "Atlas",
        "ablation": "Atlas",
    },
    figure_requires={"ground_truth_vs_sparsity": ("synthetic",), "ground_truth_factors": ("synthetic",),
                     "ablation": ("clip",)},
    build="audiosae.atlas.report:build",
    draw="audiosae.atlas.report:draw",
    claims="audiosae.atlas.report:atlas_claims",
    claim_columns={"interpretable": ("model", "layer", "rep", "units", "live", "clear", "clear_by_auroc",
                                     "clear_by_rho", "share", "delta_share")},
    pages="results/atlas/{model}/layer{layer}/{rep}",
)


FRAMES = Section(
    name="frames",
    title="Frame level: SAEs on every frame, and the acoustics over time",
    tables={
        "levels": "Clip-level against frame-level SAEs on the same audio, one row per (model, layer, sparsity): "
                  "test FVU (clip SAEs over pooled vectors, frame SAEs over frames), dead latents, probe accuracy "
                  "(first probe target, named in probe_target), "
                  "eGeMAPS completeness and R², frame acoustics (MCC, best |ρ| with the F0 LLD).",
        "frame_mcc": "Per frame representation: one-to-one matched MCC (Hungarian, |Spearman ρ| over the test "
                     "frames) against every target and against the LLDs only, best |ρ| with the F0 LLD and the "
                     "true f0.",
        "frame_acoustics": "Per frame representation and target (eGeMAPS LLD, true f0): the unit with the highest "
                           "|Spearman ρ| over the test frames, and the unit matched to it one to one.",
    },
    figures={"levels_comparison": "Frame level", "frame_acoustics_best_rho": "Frame level"},
    build="audiosae.frames.report:build",
    draw="audiosae.frames.report:draw",
    claims="audiosae.frames.report:frames_claims",
    claim_columns={"frame_mcc": ("model", "layer", "rep", "level", "n_units", "mcc", "mcc_llds",
                                 "f0_lld_best_abs_rho", "true_f0_best_abs_rho")},
    requires=("frame",),
)

CONTROLS = Section(
    name="controls",
    title="Controls: random-weights twins, SAE seeds, k-sparse probing",
    tables={
        "stability": "Seed stability per (model, layer, level, sparsity, pair of seeds): decoder directions of live "
                     "latents matched one to one (Hungarian on cosine); mean matched cosine and share matched at "
                     "cosine ≥ threshold, beside the same for two random direction sets of that shape. near_baseline: "
                     "the dictionary is not determined by the data.",
        "seed_spread": "Per (model, layer, level, sparsity, metric): test FVU, probe accuracy per target and the "
                       "interpretable share over the SAE seeds (values, mean, standard deviation, range).",
        "sparse_probing": "k-sparse probing per (model, layer, rep, target, k): per class against the rest, a "
                          "logistic probe on the k units with the largest difference of class means (train), mean "
                          "balanced accuracy over classes on the test clips with its 95 % interval; delta: SAE minus "
                          "the layer's own dimensions at the same k, paired interval. twin: the random-weights twin.",
        "activation_scale": "Each analysed layer's scale (mean over units of the standard deviation over train "
                            "items), trained model against its random-weights twin.",
    },
    figures={"stability": "Controls", "sparse_probing": "Controls"},
    figure_requires={"stability": ("seeds",), "sparse_probing": ("sparse_probe",)},
    build="audiosae.controls.report:build",
    draw="audiosae.controls.report:draw",
    claims="audiosae.controls.report:controls_claims",
    claim_columns={"sparse_probing": ("model", "twin", "layer", "rep", "target", "k", "balanced_accuracy", "lo",
                                      "hi", "delta", "delta_lo", "delta_hi")},
    requires=("controls",),
)

SPLICE = Section(
    name="splice",
    title="Splice: the SAEs put back into their networks",
    tables={
        "splice": "Per (model, layer, rep, metric): the network's output metric on the test clips with the layer "
                  "clean, replaced by the SAE's reconstruction (frame SAEs: every frame; clip SAEs: the clip mean, "
                  "every frame shifted alike) and by the mean-ablation floor of that level; fraction_recovered = "
                  "(sae − mean_patched) / (clean − mean_patched), [lo, hi] its 95 % bootstrap interval over test "
                  "clips. primary: the node's output metric the claim reads.",
    },
    figures={"splice_recovered": "Splice", "splice_pitch": "Splice"},
    build="audiosae.splice.report:build",
    draw="audiosae.splice.report:draw",
    claims="audiosae.splice.report:splice_claims",
    claim_columns={"splice": ("model", "twin", "layer", "rep", "level", "metric", "clean", "sae", "mean_patched",
                              "fraction_recovered", "lo", "hi")},
    requires=("splice",),
)

CAUSAL = Section(
    name="causal",
    title="Causal atlas: erase a concept, steer a latent",
    tables={
        "erasure": "Per (model, layer, SAE at causal.sparsity, target, class): the clean output-level probe's "
                   "one-vs-rest balanced accuracy with its 95 % interval; erased (the smallest n and share of live "
                   "latents, ranked by train AUROC, whose removal inside the network brings the interval to 0.5), "
                   "not erased, or untestable (clean already at chance); the same for random removal; "
                   "collateral_at_erased = the other classes' mean balanced accuracy lost at that n.",
        "erasure_curves": "Every point of the erasure curves: removal top (ranked) or random (mean over "
                          "causal.erasure_draws draws), n, share of live latents, balanced accuracy of the class with "
                          "its interval, and the other classes' mean (collateral damage).",
        "steering": "Per tested atlas card (the top causal.top_n labelled cards of each page): the label's predicted "
                    "output (class probability, CREPE pitch in cents, or an attribute's read-out in train sd), α, "
                    "the effect of adding multiple·α·d on every frame with its 95 % interval over clips, random "
                    "directions of the same norm (mean ± sd) and the badge.",
    },
    figures={"erasure_curves": "Causal atlas"},
    build="audiosae.causal.report:build",
    draw="audiosae.causal.report:draw",
    claims="audiosae.causal.report:causal_claims",
    claim_columns={
        "erasure": ("model", "layer", "rep", "target", "class", "clean_balanced_accuracy", "clean_lo", "status",
                    "erased_n", "erased_share", "random_erased_share", "collateral_at_erased"),
        "steering": ("model", "layer", "rep", "unit", "label", "kind", "effect", "lo", "hi", "random_mean",
                     "random_sd", "badge"),
    },
    requires=("causal",),
)

# Registry order is report order. A new stage appends its Section here.
SECTIONS: tuple[Section, ...] = (CORE, ATLAS, FRAMES, CONTROLS, SPLICE, CAUSAL)


def flags(config: Mapping) -> set[str]:
    """The study flags sections and figures can require, from a validated config.

    ``synthetic``: the corpus has true generative factors.
    ``clip``: the study trains clip-level SAEs (``sae.levels`` contains clip; the paper's).
    ``frame``: the study trains frame-level SAEs (``sae.levels`` contains frame).
    ``causal``: the study runs the causal atlas (``causal.enabled``).
    ``twin``, ``seeds``, ``sparse_probe``: the study runs that control (``controls.random_twin``,
    ``controls.seeds``, ``controls.sparse_probing``); ``controls``: any of them.
    ``splice``: every SAE is put back into its network (``splice.enabled``).
    """
    out = set()
    controls = config.get("controls", {})
    if controls.get("random_twin"):
        out.add("twin")
    if len(set(controls.get("seeds") or []) | {config.get("sae", {}).get("seed")}) > 1:
        out.add("seeds")
    if controls.get("sparse_probing"):
        out.add("sparse_probe")
    if out & {"twin", "seeds", "sparse_probe"}:
        out.add("controls")
    if config["data"]["corpus"] == "synthetic":
        out.add("synthetic")
    if config.get("causal", {}).get("enabled", True):
        out.add("causal")
    if config.get("splice", {}).get("enabled", True):
        out.add("splice")
    levels = config.get("sae", {}).get("levels", ["clip"])
    out.update(level for level in ("clip", "frame") if level in levels)
    return out


def sections(study_flags: Iterable[str], registry: Iterable[Section] = SECTIONS) -> list[Section]:
    """The sections this study has, in report order."""
    study_flags = set(study_flags)
    return [s for s in registry if s.enabled(study_flags)]


def table_names(study_flags: Iterable[str] | None = None, registry: Iterable[Section] = SECTIONS) -> list[str]:
    """Every registered table (of the enabled sections when `study_flags` is given)."""
    secs = registry if study_flags is None else sections(study_flags, registry)
    return [t for s in secs for t in s.tables]


def figure_names(study_flags: Iterable[str], registry: Iterable[Section] = SECTIONS) -> list[str]:
    return [f for s in sections(study_flags, registry) for f in s.figure_names(study_flags)]


def table_note(name: str, registry: Iterable[Section] = SECTIONS) -> str:
    for s in registry:
        if name in s.tables:
            return s.tables[name]
    return ""


def figure_subcategory(name: str, registry: Iterable[Section] = SECTIONS) -> str:
    for s in registry:
        if name in s.figures:
            return s.figures[name]
    return "Other"


def claim_columns(name: str, registry: Iterable[Section] = SECTIONS) -> tuple[str, ...] | None:
    for s in registry:
        if name in s.claim_columns:
            return tuple(s.claim_columns[name])
    return None


def section(name: str, registry: Iterable[Section] = SECTIONS) -> Section:
    for s in registry:
        if s.name == name:
            return s
    raise KeyError(f"report registry: no section {name!r} (sections: {', '.join(s.name for s in registry)})")


def run_section(name: str, inputs: dict[str, list[str]], params: dict, outputs: dict[str, list[str]],
                registry: Iterable[Section] = SECTIONS) -> list[str]:
    """Write one section's outputs, as its rule names them: ``csv`` (and ``md``) tables built by its `build`
    (a rule without ``csv`` outputs reads its ``tables`` input instead), ``png`` (and ``pdf``) figures drawn by
    its `draw`, and its captions file. Returns log lines."""
    from pathlib import Path

    from audiosae.report._io import write_captions
    from audiosae.report.aggregate import read_tables, write_table

    sec = section(name, registry)
    log = []
    csv = outputs.get("csv", [])
    if csv:
        tables = sec.build_function()(inputs, params)
        if set(tables) != set(sec.tables):
            raise RuntimeError(f"report section {name!r}: build returned tables {sorted(tables)}, the registry "
                               f"declares {sorted(sec.tables)}")
        for path in csv:
            stem = Path(path).stem
            write_table(Path(path).parent, stem, tables[stem])
            log.append(f"{path}: {len(tables[stem])} rows")
    else:
        paths = inputs["tables"]
        tables = read_tables(Path(paths[0]).parent, [Path(p).stem for p in paths])
    png = outputs.get("png", [])
    if png:
        figures_dir = Path(png[0]).parent
        captions = sec.draw_function()(tables, inputs, params, figures_dir, [Path(p).stem for p in png])
        write_captions(figures_dir, name, captions)
        log += [f"{k}: {v}" for k, v in captions.items()]
    return log


def check_unique(registry: Iterable[Section] = SECTIONS) -> None:
    """Two sections must not claim the same section, table or figure name."""
    seen: dict[str, str] = {}
    for s in registry:
        for kind, names in (("section", [s.name]), ("table", s.tables), ("figure", s.figures)):
            for n in names:
                key = f"{kind} {n}"
                if key in seen:
                    raise ValueError(f"report registry: {key} is registered by both {seen[key]} and {s.name}")
                seen[key] = s.name


check_unique()
