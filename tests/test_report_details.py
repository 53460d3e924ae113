"""The smaller points of issue 31: what a report or atlas page says on a corpus nobody here designed."""

from __future__ import annotations

import re

from conftest import REPO


def test_the_wall_time_table_says_why_extraction_is_not_in_it(tmp_path):
    from audiosae.report.html import build_html

    bench = tmp_path / "benchmarks/rules/train_sae"
    bench.mkdir(parents=True)
    (bench / "a.tsv").write_text("s\th:m:s\tmax_rss\n3.5\t0:00:03\t100.0\n")
    page = build_html(tables={}, figures={}, captions={}, claims=[], config_yaml="report: {title: t}\n",
                      benchmarks_dir=tmp_path / "benchmarks/rules")
    section = page.split("Wall time per rule", 1)[1].split("<h3>", 1)[0]
    assert "train_sae" in section
    assert "extract_embeddings is not in this table" in section and "extraction_time_s" in section


def _page(label_columns, units, clips):
    from audiosae.atlas.page import render_page

    return render_page({"title": "m layer 1 · SAE 0.9", "model": "m", "layer": 1, "rep": "sae0.9", "n_clips": len(clips),
                        "summary": {}, "thresholds": {}, "label_columns": label_columns, "clips": clips,
                        "units": units})


def test_the_atlas_search_hint_comes_from_the_corpus_labels():
    clips = [{"id": f"c{i}", "labels": [w], "audio": f"{i}.flac", "image": f"{i}.png"} for i, w in
             enumerate(["yes", "no", "stop"])]
    units = [{"u": 0, "auc": [["word", "stop", 0.97, 0.2]]}]
    page = _page(["word"], units, clips)
    hint = re.search(r'id="search" type="search" placeholder="([^"]*)"', page).group(1)
    assert hint == "search label, class or attribute (e.g. stop, F0)" and "vibrato" not in page
    page = _page(["word"], [], clips)  # no unit: a class of the page's clips
    assert 'placeholder="search label, class or attribute (e.g. no, F0)"' in page


def test_audio_players_load_nothing_before_play():
    """preload="metadata" on every player (to show each length before play) makes a page of 40 cards open hundreds
    of media players; Chromium refuses those past its limit, so audio fails to load (seen in test_atlas_page's
    headless check). The players load on play."""
    clips = [{"id": "c0", "labels": ["yes"], "audio": "0.flac", "image": "0.png"}]
    page = _page(["word"], [], clips)
    players = re.findall(r"<audio [^>]*>", page)
    assert players and all('preload="none"' in p for p in players), players


def test_the_atlas_landing_page_has_no_mcc_column_without_ground_truth():
    from audiosae.atlas.site import landing_page

    row = {"model": "m", "layer": 1, "rep": "sae0.9", "units": 8, "live": 6, "clear": 2, "share": 1 / 3,
           "href": "m/layer1/sae0.9/index.html"}
    assert "MCC" not in landing_page([{**row, "mcc": None}])
    assert "<th>MCC</th>" in landing_page([{**row, "mcc": 0.41}]) and "0.410" in landing_page([{**row, "mcc": 0.41}])


def test_the_model_card_corpus_row_names_the_file():
    from audiosae.config import corpus_description

    table = {"corpus": "table", "table": {"file": "data/my_corpus.csv", "labels": ["word", "speaker"]}}
    assert corpus_description(table) == "table data/my_corpus.csv (labels: word, speaker)"
    assert "my_audio" in corpus_description({"corpus": "folders", "folders": {"root": "my_audio", "label": "kind"}})
    rule = (REPO / "rules/interop.smk").read_text()
    assert 'corpus=corpus_description(config["data"])' in rule


def test_docs_say_how_to_run_sparsify_on_a_cpu():
    assert "SPARSIFY_DISABLE_TRITON=1" in (REPO / "docs/interop.md").read_text()
