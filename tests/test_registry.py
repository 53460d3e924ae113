"""The report registry: one entry per stage is all the report needs to show its tables, figures, claims and pages."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from audiosae.report import registry
from audiosae.report.claims import Claim, answer_claims
from audiosae.report.html import build_html, page_links
from audiosae.report.registry import Section

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("section", registry.SECTIONS, ids=lambda s: s.name)
def test_every_registered_output_has_a_snakemake_report_caption(section):
    for t in section.tables:
        assert (REPO / "report" / "tables" / f"{t}.rst").exists(), f"report/tables/{t}.rst missing"
    for f in section.figures:
        assert (REPO / "report" / "figures" / f"{f}.rst").exists(), f"report/figures/{f}.rst missing"


def test_duplicate_names_across_sections_are_refused():
    a = Section(name="a", title="A", tables={"probe": ""})
    with pytest.raises(ValueError, match="table probe is registered by both core and a"):
        registry.check_unique((registry.CORE, a))


def test_flags_select_sections_and_figures():
    needs = Section(name="frames", title="F", tables={"x": ""}, figures={"y": "Other", "z": "Other"},
                    requires=("frames",), figure_requires={"z": ("synthetic",)})
    reg = (registry.CORE, needs)
    assert [s.name for s in registry.sections(set(), reg)] == ["core"]
    assert registry.figure_names({"frames"}, reg)[-1] == "y"
    assert "factor_importance" not in registry.figure_names({"frames"}, reg)
    assert registry.figure_names({"frames", "synthetic"}, reg)[-2:] == ["y", "z"]
    assert registry.table_names({"frames"}, reg)[-1] == "x"


def test_a_registered_section_answers_its_claims_after_the_core(monkeypatch):
    mod = types.ModuleType("fake_stage")

    def claims(tables):
        n = len(tables["units"])
        return [Claim(number=5, title="units", paper="p", sentence=f"{n} units", verdict="supported", rule="r",
                      table="units", figure="")]

    mod.claims = claims
    monkeypatch.setitem(sys.modules, "fake_stage", mod)
    extra = Section(name="stage", title="Stage", tables={"units": "one row per unit"}, claims="fake_stage:claims")
    out = answer_claims({"units": pd.DataFrame({"u": [1, 2, 3]})}, sections=(extra,))
    assert [(c.number, c.sentence) for c in out] == [(5, "3 units")]
    # A section whose tables this study did not produce answers nothing (instead of failing).
    assert answer_claims({}, sections=(extra,)) == []


def test_explore_pages_are_linked_relative_to_the_report(tmp_path):
    report = tmp_path / "results" / "report.html"
    page = tmp_path / "results" / "atlas" / "crepe" / "layer4" / "sae0.5" / "index.html"
    links = page_links(report, {"Latent atlas": [page]})
    assert links == {"Latent atlas": [("atlas/crepe/layer4/sae0.5", "atlas/crepe/layer4/sae0.5/index.html")]}
    html = build_html(tables={}, figures={}, captions={}, claims=[], config_yaml="report: {title: t}\n",
                      versions={}, pages=links)
    assert '<a href="atlas/crepe/layer4/sae0.5/index.html">atlas/crepe/layer4/sae0.5</a>' in html
    assert 'href="#explore"' in html


def test_a_folder_page_links_its_index(tmp_path):
    """A stage whose page is a directory() output registers the folder; the report links its index.html."""
    report = tmp_path / "results" / "report.html"
    folder = tmp_path / "results" / "atlas" / "crepe" / "layer4" / "original"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<html></html>")
    assert page_links(report, {"Latent atlas": [folder]}) == {
        "Latent atlas": [("atlas/crepe/layer4/original", "atlas/crepe/layer4/original/index.html")]}


@pytest.mark.parametrize("section", registry.SECTIONS, ids=lambda s: s.name)
def test_every_section_builds_and_draws_through_the_one_contract(section):
    import inspect

    build, draw = section.build_function(), section.draw_function()
    assert list(inspect.signature(build).parameters)[:2] == ["inputs", "params"]
    assert list(inspect.signature(draw).parameters)[:5] == ["tables", "inputs", "params", "out_dir", "names"]


def test_run_section_writes_the_registered_tables_figures_and_captions(monkeypatch, tmp_path):
    import json

    mod = types.ModuleType("fake_section")
    seen = {}

    def build(inputs, params):
        seen["build"] = (inputs, params)
        return {"units": pd.DataFrame({"u": [1, 2, 3]})}

    def draw(tables, inputs, params, out_dir, names):
        for n in names:
            (Path(out_dir) / f"{n}.png").write_bytes(b"png")
        return {n: f"{len(tables['units'])} units" for n in names}

    mod.build, mod.draw = build, draw
    monkeypatch.setitem(sys.modules, "fake_section", mod)
    sec = Section(name="stage", title="Stage", tables={"units": ""}, figures={"plot": "Other"},
                  build="fake_section:build", draw="fake_section:draw")
    out = {"csv": [str(tmp_path / "tables/units.csv")], "png": [str(tmp_path / "figures/plot.png")]}
    (tmp_path / "figures").mkdir()
    registry.run_section("stage", {"files": ["a.json"]}, {"seed": 1}, out, registry=(sec,))
    assert seen["build"] == ({"files": ["a.json"]}, {"seed": 1})
    assert pd.read_csv(tmp_path / "tables/units.csv")["u"].tolist() == [1, 2, 3]
    assert (tmp_path / "tables/units.md").exists()
    assert json.loads((tmp_path / "figures/captions/stage.json").read_text()) == {"plot": "3 units"}
    # a build that returns other tables than the registry declares is refused, naming both
    mod.build = lambda inputs, params: {"unit": pd.DataFrame()}
    with pytest.raises(RuntimeError, match=r"build returned tables \['unit'\], the registry declares \['units'\]"):
        registry.run_section("stage", {}, {}, out, registry=(sec,))
