"""Every registered figure, drawn from planted tables whose LAST panels hold the extreme values, shows all it draws.

Issue 31: the FVU figure's Resemblyzer panel was empty because the panels shared a
y-range set from the first panel; the ablation figure drew panels for an SAE that
did not exist at a node, and its class ticks were too small to read. Here each
section's `draw` runs through the registry's contract on tables planted so that
the last model's rows are five times larger than the rest (and one node lacks an
SAE), and every saved figure is inspected before it is closed:

- every point, bar, band and mesh drawn in data coordinates lies inside its axes;
- no framed axes is empty: it draws data, or says "no data";
- class tick labels read at >= MIN_TICK_PX pixels once the report scales the
  figure to its page width, at VocalSet's 10 classes.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.figure  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from audiosae.report import registry  # noqa: E402
from audiosae.report.aggregate import build_tables  # noqa: E402
from fake_results import MODELS, TECHNIQUES, write_fake_results  # noqa: E402

PAGE_PX = 1124  # the report's content width (html.py: main max-width 1180 px less its padding)
DPI = 150  # figures are saved at this resolution (report.figures.DPI)
MIN_TICK_PX = 9.0
LAST = list(MODELS)[-1]  # the model drawn last: its rows get the extreme values
KEYS = {"layer", "sparsity", "k", "n_classes", "top_n", "m", "n_test", "units", "live", "dead", "constant", "clear",
        "clear_by_auroc", "clear_by_rho", "auroc_threshold", "rho_threshold", "n_codes", "count", "seed", "factors",
        "n_units", "matched_unit", "n_latents", "input_dim", "epochs_run", "best_epoch", "dim", "twin"}


def plant(df: pd.DataFrame) -> pd.DataFrame:
    """The last model's float values five times larger, plus one: its panels (drawn last) hold the extremes."""
    if df.empty or "model" not in df:
        return df
    df = df.copy()
    rows = df["model"].astype(str).str.startswith(LAST)
    for col in df.columns:
        if col not in KEYS and pd.api.types.is_float_dtype(df[col]):
            df.loc[rows, col] = df.loc[rows, col] * 5 + 1
    return df


def frames_tables(rng) -> dict[str, pd.DataFrame]:
    levels, acoustics = [], []
    for model, layers in MODELS.items():
        for layer in layers:
            for s in (0.5, 0.9):
                levels.append({"model": model, "layer": layer, "sparsity": s, "probe_target": "technique",
                               **{f"{m}_{lv}": rng.uniform(0.1, 0.6) for m in ("test_fvu", "test_dead_fraction",
                                                                               "accuracy", "completeness_mean")
                                  for lv in ("clip", "frame")}, "accuracy_original": rng.uniform(0.4, 0.7)})
            for rep, s in (("original", np.nan), ("fsae0.9", 0.9)):
                for target in ("F0semitoneFrom27.5Hz_sma3nz", "loudness_sma3", "true_f0_hz"):
                    acoustics.append({"model": model, "layer": layer, "rep": rep, "level": "frame", "sparsity": s,
                                      "target": target, "best_abs_rho": rng.uniform(0.1, 0.9)})
    return {"levels": pd.DataFrame(levels), "frame_acoustics": pd.DataFrame(acoustics),
            "frame_mcc": pd.DataFrame(columns=["model", "layer", "rep"])}


def controls_tables(rng) -> dict[str, pd.DataFrame]:
    stability, sparse = [], []
    for model, layers in MODELS.items():
        for twin in (False, True):
            name = f"{model}_random" if twin else model
            for layer in layers:
                stability.append({"model": name, "twin": twin, "layer": layer, "level": "clip", "sparsity": 0.9,
                                  "seed_a": 42, "seed_b": 43, "mean_cos": rng.uniform(0.2, 0.6),
                                  "baseline_mean_cos": rng.uniform(0.05, 0.2), "share_matched": rng.uniform(0.1, 0.5),
                                  "baseline_share_matched": rng.uniform(0.0, 0.1)})
                for rep, lv, s in (("original", "original", np.nan), ("sae0.9", "clip", 0.9)):
                    for k in (1, 4, 16):
                        acc = rng.uniform(0.55, 0.8)
                        sparse.append({"model": name, "twin": twin, "layer": layer, "rep": rep, "level": lv,
                                       "sparsity": s, "target": "technique", "k": k, "balanced_accuracy": acc,
                                       "lo": acc - 0.05, "hi": acc + 0.05})
    return {"stability": pd.DataFrame(stability), "sparse_probing": pd.DataFrame(sparse),
            "seed_spread": pd.DataFrame(), "activation_scale": pd.DataFrame()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(tables of every section, planted; the draw inputs)."""
    from audiosae.atlas.report import build_tables as atlas_tables

    root = tmp_path_factory.mktemp("planted")
    paths = write_fake_results(root)
    rng = np.random.default_rng(31)
    tables = {**build_tables(paths["metrics"], paths["probes"], paths["disentangle"], bootstrap=200),
              **atlas_tables(paths["atlas"], paths["ablation"]), **frames_tables(rng), **controls_tables(rng)}
    # the last node has no SAE 0.5 in the ablation: it must get no panel (an empty one reads as a measured zero)
    ab = tables["ablation"]
    last_node = ab[ab["model"] == LAST]["layer"].max()
    tables["ablation"] = ab[~((ab["model"] == LAST) & (ab["layer"] == last_node) & (ab["rep"] == "sae0.5"))]
    # an imported SAE (sae.external) at one node: the last one in the sweeps (its values planted extreme below), the
    # first one in the ablation, so the other nodes have no such SAE and must get no panel for it
    for name in ("reconstruction", "probe", "interpretable"):
        df = tables[name]
        ext = df[(df["model"] == LAST) & (df["layer"] == last_node) & (df["rep"] == "sae0.9")]
        tables[name] = pd.concat([df, ext.assign(rep="ext-sparsify_l3", level="external", sparsity=np.nan)],
                                 ignore_index=True)
    first = tables["ablation"].iloc[0]
    ext = ab[(ab["model"] == first["model"]) & (ab["layer"] == first["layer"]) & (ab["rep"] == "sae0.9")]
    tables["ablation"] = pd.concat([tables["ablation"], ext.assign(rep="ext-sparsify_l3", level="external",
                                                                   sparsity=np.nan)], ignore_index=True)
    tables = {name: plant(df) for name, df in tables.items()}
    return tables, {"importance": [str(p) for p in paths["npz"]]}


def data_points(ax, artist) -> np.ndarray:
    """Display coordinates of what `artist` draws in `ax`'s data coordinates (an empty array otherwise)."""
    if isinstance(artist, Patch):
        if artist.get_data_transform() != ax.transData:
            return np.empty((0, 2))
        return artist.get_transform().transform(artist.get_path().vertices)
    if artist.get_transform() != ax.transData and not (
            hasattr(artist, "get_offset_transform") and artist.get_offset_transform() == ax.transData):
        return np.empty((0, 2))
    if hasattr(artist, "get_xydata"):  # Line2D
        return artist.get_transform().transform(np.asarray(artist.get_xydata(), float))
    if hasattr(artist, "get_coordinates"):  # QuadMesh (heatmaps)
        return ax.transData.transform(np.asarray(artist.get_coordinates(), float).reshape(-1, 2))
    points = []
    offsets = np.asarray(artist.get_offsets(), float)
    if offsets.size and artist.get_offset_transform() == ax.transData:  # scatter markers
        points.append(ax.transData.transform(offsets))
    if artist.get_transform() == ax.transData:  # error bars, bands
        points += [ax.transData.transform(np.asarray(p.vertices, float)) for p in artist.get_paths()]
    return np.vstack(points) if points else np.empty((0, 2))


def check_figure(name: str, fig) -> list[str]:
    """What `fig` hides: points outside their axes, framed axes without data or a 'no data' note."""
    fig.canvas.draw()
    problems = []
    for i, ax in enumerate(fig.axes):
        if hasattr(ax, "_colorbar") or getattr(ax, "_colorbar_info", None):
            continue
        box = ax.bbox
        n_data = 0
        for artist in [*ax.lines, *ax.collections, *ax.patches]:
            pts = data_points(ax, artist)
            pts = pts[np.isfinite(pts).all(axis=1)] if len(pts) else pts
            n_data += len(pts)
            out = pts[(pts[:, 0] < box.x0 - 1.5) | (pts[:, 0] > box.x1 + 1.5) | (pts[:, 1] < box.y0 - 1.5)
                      | (pts[:, 1] > box.y1 + 1.5)] if len(pts) else pts
            if len(out):
                x, y = ax.transData.inverted().transform(out[0])
                problems.append(f"{name}: axes {i} ({ax.get_title()!r}) hides data at ({x:.3g}, {y:.3g}); "
                                f"limits x {ax.get_xlim()}, y {ax.get_ylim()}")
        says_no_data = any("no data" in t.get_text() for t in ax.texts)
        if ax.axison and not n_data and not says_no_data:
            problems.append(f"{name}: axes {i} ({ax.get_title()!r}) is an empty panel")
    return problems


def tick_px(fig, label) -> float:
    """A tick label's size in screen pixels once the report fits the figure into its page width."""
    width_px = fig.get_size_inches()[0] * DPI
    return label.get_fontsize() * DPI / 72 * min(1.0, PAGE_PX / width_px)


def test_every_registered_figure_shows_all_it_draws(planted, tmp_path, monkeypatch):
    tables, inputs = planted
    seen, problems, ticks = {}, [], {}
    original = matplotlib.figure.Figure.savefig

    def inspect(fig, fname, *args, **kwargs):
        name = Path(str(fname)).name.split(".")[0]
        if name not in seen:  # the PNG, then the PDF of the same figure
            seen[name] = fig
            problems.extend(check_figure(name, fig))
            if name in ("ablation", "confusion_best_node"):  # class ticks: VocalSet's 10 techniques
                labels = [t for ax in fig.axes for t in ax.get_xticklabels() if t.get_text() in TECHNIQUES]
                assert labels, name
                ticks[name] = min(tick_px(fig, t) for t in labels)
        return original(fig, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", inspect)
    flags = {"synthetic", "clip", "frame", "twin", "seeds", "sparse_probe", "controls"}
    for section in registry.sections(flags):
        names = section.figure_names(flags)
        captions = section.draw_function()(tables, inputs, {}, tmp_path / section.name, names)
        assert set(captions) == set(names)
    assert set(seen) == set(registry.figure_names(flags)), sorted(seen)
    assert not problems, "\n".join(problems)
    assert ticks and all(px >= MIN_TICK_PX for px in ticks.values()), ticks


def test_the_ablation_draws_no_panel_for_an_sae_a_node_lacks(planted):
    from audiosae.atlas.figures import fig_ablation

    tables, _ = planted
    fig, _ = fig_ablation(tables)
    ab = tables["ablation"]
    framed = [ax for ax in fig.axes if ax.axison]
    assert len(framed) == len(set(zip(ab["model"], ab["layer"], ab["rep"])))
    assert not check_figure("ablation", fig)
    titles = [ax.get_title() for ax in framed if "imported" in ax.get_title()]
    assert len(titles) == 1, titles  # the imported SAE exists at one node only


def test_the_sweeps_draw_an_imported_sae_where_its_node_has_one(planted):
    from audiosae.report.figures import fig_fvu

    tables, _ = planted
    fig, _ = fig_fvu(tables)
    ext = tables["reconstruction"][tables["reconstruction"]["rep"] == "ext-sparsify_l3"]
    panel = next(ax for ax in fig.axes if ax.get_title() == LAST)
    assert "imported" in [t.get_text() for t in panel.get_xticklabels()]
    diamonds = [ln for ln in panel.lines if ln.get_marker() == "D"]
    assert [float(ln.get_ydata()[0]) for ln in diamonds] == pytest.approx(list(ext["test_fvu"]))
    assert not check_figure("fvu_vs_sparsity", fig)


def test_a_skipped_ablation_node_says_no_data():
    from audiosae.atlas.figures import fig_ablation

    rows = [{"model": "m", "layer": 1, "rep": rep, "level": "clip", "sparsity": s, "class": c, "m": 8,
             "drop_class": v, "drop_others": v, "control_drop_class": v,
             "note": "skipped: 1 live latent, too few to ablate and compare" if math.isnan(v) else ""}
            for rep, s, v in (("sae0.5", 0.5, 0.2), ("sae0.9", 0.9, float("nan"))) for c in ("a", "b")]
    fig, _ = fig_ablation({"ablation": pd.DataFrame(rows)})
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("no data") and "1 live latent" in t for t in texts), texts
    assert not check_figure("ablation", fig)
