"""The atlas on the tiny study: one page per (model, layer, rep), and a page at work in headless Chromium."""

from __future__ import annotations

import json
import math
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import tiny_config
from headless import dom_when
from test_report_html import CHROMIUM_FLAGS, _chromium

pytestmark = pytest.mark.workflow


def _nodes(cfg: dict) -> list[tuple[str, int, str]]:
    reps = ["original"] + [f"sae{s}" for s in cfg["sae"]["sparsities"]]
    return [(m, int(l), r) for m, spec in cfg["models"].items() for l in spec["layers"] for r in reps]


def page_blob(page: Path) -> dict:
    text = page.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="atlas-data">(.*?)</script>', text, re.S)
    assert m, f"{page}: no data blob"
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_every_node_and_rep_has_an_atlas(demo_run):
    cfg = tiny_config()
    widths = {}
    for model, layer, rep in _nodes(cfg):
        d = demo_run / f"results/atlas/{model}/layer{layer}/{rep}"
        units = pd.read_csv(d / "units.csv", keep_default_na=False, na_values=[""])
        summary = json.loads((d / "summary.json").read_text())
        data = page_blob(d / "index.html")
        assert len(units) == summary["units"] and summary["live"] == len(data["units"]) > 0
        assert set(units["label"]) - {"dead", "constant"}, f"{d}: no live unit"
        assert {"technique_class", "technique_auroc", "singer_auroc", "attr1", "attr1_rho", "factor1",
                "top_clips", "median_clips", "label", "clarity"} <= set(units.columns)
        assert "truth" in summary and len(summary["truth"]["factors"]) >= 7  # the synthetic corpus's factors
        if rep == "original":
            widths[(model, layer)] = len(units)
            assert not units["dead"].any()
        else:
            assert len(units) == 4 * widths[(model, layer)]  # sae.dim x4 in the tiny study
    clips = pd.read_csv(demo_run / "results/atlas/clips/index.csv")
    manifest = pd.read_csv(demo_run / "results/data/manifest.csv")
    assert sorted(clips["clip_id"]) == sorted(manifest["clip_id"])
    # the report links every page
    report = (demo_run / "results/report.html").read_text()
    for model, layer, rep in _nodes(cfg):
        assert f'href="atlas/{model}/layer{layer}/{rep}/index.html"' in report
    # the site folder (for snakemake --report) mirrors every page and every clip once
    site = demo_run / "results/atlas_site"
    assert (site / "index.html").exists()
    for model, layer, rep in _nodes(cfg):
        assert (site / f"{model}/layer{layer}/{rep}/index.html").resolve() == \
            (demo_run / f"results/atlas/{model}/layer{layer}/{rep}/index.html").resolve()
    assert len(list((site / "clips").glob("*.ogg"))) == len(manifest)


# Types a class name into the search box once the page has rendered, and records what the page shows;
# then runs every query of __QUERIES__ and every sort order, recording the count line and the cards' unit ids.
PROBE = """<script>
window.addEventListener('load', () => {
  const b = document.body, cards = () => Array.from(document.querySelectorAll('.card'));
  b.setAttribute('data-cards-before', String(cards().length));
  b.setAttribute('data-count-before', document.getElementById('count').textContent);
  const imgs = Array.from(document.images);
  b.setAttribute('data-images', String(imgs.length));
  b.setAttribute('data-broken-images', String(imgs.filter(i => !i.complete || i.naturalWidth === 0).length));
  b.setAttribute('data-players', String(document.querySelectorAll('.clip audio').length));
  b.setAttribute('data-lengths', JSON.stringify(Array.from(document.querySelectorAll('.clip .len'), e => e.textContent)));
  const box = document.getElementById('search'), sort = document.getElementById('sort');
  box.value = '__QUERY__';
  box.dispatchEvent(new Event('input'));
  const after = cards();
  b.setAttribute('data-cards-after', String(after.length));
  b.setAttribute('data-count-after', document.getElementById('count').textContent);
  b.setAttribute('data-nonmatching', String(after.filter(c => !c.textContent.toLowerCase().includes('__QUERY__')).length));
  const seen = () => ({count: document.getElementById('count').textContent,
                       units: cards().map(c => Number(c.getAttribute('data-unit')))});
  const results = {search: {}, sort: {}};
  for (const q of __QUERIES__) {
    box.value = q;
    box.dispatchEvent(new Event('input'));
    results.search[q] = seen();
  }
  box.value = '';
  box.dispatchEvent(new Event('input'));
  for (const opt of Array.from(sort.options).map(o => o.value)) {
    sort.value = opt;
    sort.dispatchEvent(new Event('change'));
    results.sort[opt] = seen();
  }
  b.setAttribute('data-results', JSON.stringify(results));
  const audio = new Audio(document.querySelector('audio').getAttribute('src'));
  audio.addEventListener('loadedmetadata', () => b.setAttribute('data-audio-seconds', String(audio.duration)));
  audio.addEventListener('error', () => b.setAttribute('data-audio-seconds', 'error'));
  audio.preload = 'metadata'; audio.load();
});
</script>"""

# The sort options of the page and the unit field each orders by (largest first; ties by unit id).
BADGE_RANK = {"causal": 3, "not causal": 2, "untestable": 1}
# The page's sort keys: a field, or (the causal badge) its rank, then clarity; untested cards last
SORTS = {"clarity": "clarity", "auroc": "best_auc", "rho": "best_rho", "fr": "fr",
         "causal": lambda u: BADGE_RANK[u["causal"][0]] + (u.get("clarity") or 0) / 10 if u.get("causal") else None}


def _matches(units: list[dict], query: str) -> list[dict]:
    """The page's search as documented: every word of the query (case-insensitive) appears in the unit's text."""
    words = query.lower().split()
    return [u for u in units if all(w in _searchable(u) for w in words)]


def _ordered(units: list[dict], field: str | None) -> list[int]:
    """Unit ids in the page's order for a sort field (None: by unit id)."""
    if field is None:
        return sorted(u["u"] for u in units)
    get = field if callable(field) else (lambda u: u.get(field))
    value = lambda u: -math.inf if get(u) is None else get(u)  # noqa: E731
    return [u["u"] for u in sorted(units, key=lambda u: (-value(u), u["u"]))]


def _queries(data: dict) -> dict[str, str]:
    """Queries that tell an AND search from an OR search, and singer, attribute and "unit N" queries."""
    units, n = data["units"], len(data["units"])
    classes = {col: sorted({a[1] for u in units for a in u["auc"] if a[0] == col}) for col in ("technique", "singer")}
    count = lambda q: len(_matches(units, q))  # noqa: E731
    # two words each naming some cards, where AND keeps fewer cards than either word alone (so fewer than OR)
    pairs = [(count(f"{t} {s}"), t, s) for t in classes["technique"] for s in classes["singer"]
             if 0 < count(f"{t} {s}") < min(count(t), count(s))]
    assert pairs, "no technique and singer pair tells AND from OR on this page"
    _, t, s = max(pairs)
    singer = min(classes["singer"], key=lambda c: (abs(count(c) - n / 2), c))
    attrs = sorted({a[0] for u in units for a in u.get("attrs", [])})
    attr = min(attrs, key=lambda a: (abs(count(a) - n / 3), a))
    last = max(u["u"] for u in units)
    queries = {"and": f"{t} {s}", "singer": singer, "attribute": attr, "unit": f"unit {last}",
               "mixed case": f"  {t.upper()}   {s} "}
    for name, q in queries.items():
        assert 0 < count(q) < n or name == "unit", (name, q, count(q))
    return queries


class _Body(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attrs = {}

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.attrs = dict(attrs)


def _searchable(unit: dict) -> str:
    words = [unit["label"], f"unit {unit['u']}"]
    words += [w for a in unit["auc"] for w in a[:2]]
    words += [a[0] for a in unit.get("attrs", []) + unit.get("factors", [])]
    return " ".join(str(w) for w in words).lower()


def test_atlas_page_in_headless_chromium(demo_run, tmp_path):
    browser = _chromium()
    page = demo_run / "results/atlas/crepe/layer4/sae0.5/index.html"
    data = page_blob(page)
    # a class that names some cards but not all: the search must keep exactly those
    counts = {}
    for u in data["units"]:
        for col, cls, *_ in u["auc"]:
            if col == "technique":
                counts[cls] = counts.get(cls, 0) + 1
    query = min(counts, key=lambda c: (abs(counts[c] - len(data["units"]) / 2), c)).lower()
    expected = sum(query in _searchable(u) for u in data["units"])
    assert 0 < expected < len(data["units"])

    probed = page.with_name("probed.html")  # beside the page, so media/ resolves; removed below
    queries = _queries(data)
    script = PROBE.replace("__QUERY__", query).replace("__QUERIES__", json.dumps(list(queries.values())))
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    flags = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--autoplay-policy=no-user-gesture-required"]
    try:
        shot = tmp_path / "atlas.png"
        subprocess.run([*flags, "--window-size=1400,1800", f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
        assert shot.exists()
        # The DOM once the probe's last step, the audio clip's metadata, has landed: it arrives from the media
        # thread after the page is idle, which a --virtual-time-budget dump does not wait for (tests/headless.py).
        # Lazy images load with the page (as in a --dump-dom run), so the probe's count at `load` sees every one.
        dom = dom_when([*flags, "--blink-settings=lazyLoadEnabled=false"], probed.as_uri(),
                       "document.body && document.body.hasAttribute('data-audio-seconds')", timeout_s=120)
    finally:
        probed.unlink()
    assert "</html>" in dom
    body = _Body()
    body.feed(dom)
    a = body.attrs
    n = len(data["units"])
    page_size = 40
    assert int(a["data-cards-before"]) == min(n, page_size)
    assert a["data-count-before"].startswith(f"{n} of {n} live units match")
    assert int(a["data-cards-after"]) == min(expected, page_size)
    assert a["data-count-after"].startswith(f"{expected} of {n} live units match")
    assert a["data-nonmatching"] == "0"
    assert int(a["data-images"]) > 0 and a["data-broken-images"] == "0", {k: v[:100] for k, v in a.items()}
    assert float(a["data-audio-seconds"]) == pytest.approx(1.5, abs=0.05)  # the tiny study's crop
    # Players load nothing until played (a page of them would exceed Chromium's media-player limit), so each
    # shows the clip's length beside it, from the page's data: that of the file it plays.
    assert json.loads(a["data-lengths"]) == ["1.5 s"] * int(a["data-players"]) and int(a["data-players"]) > 0
    # Every query: the count line and the first page of cards, against the search computed here from the blob.
    results = json.loads(a["data-results"])
    for name, q in queries.items():
        want = _matches(data["units"], q)
        got = results["search"][q]
        assert got["count"].startswith(f"{len(want)} of {n} live units match"), (name, q, got["count"])
        assert got["units"] == _ordered(want, "clarity")[:page_size], (name, q)
    t, s = queries["and"].split()
    either = [u for u in data["units"] if t in _searchable(u) or s in _searchable(u)]
    assert len(_matches(data["units"], queries["and"])) < len(either)  # AND, not OR
    assert max(u["u"] for u in data["units"]) in results["search"][queries["unit"]]["units"]
    # Every sort order of the select, on all units.
    assert set(results["sort"]) == {*SORTS, "unit"}
    for opt, got in results["sort"].items():
        want = _ordered(data["units"], SORTS.get(opt))[:page_size]
        assert got["units"] == want, opt
        assert got["count"].startswith(f"{n} of {n} live units match"), opt

    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert float(np.std(pixels[..., :3])) > 0.05


def test_every_media_file_a_page_names_exists_and_decodes(demo_run):
    from PIL import Image

    crop = tiny_config()["audio"]["crop_seconds"]
    for model, layer, rep in _nodes(tiny_config()):
        page = demo_run / f"results/atlas/{model}/layer{layer}/{rep}/index.html"
        data = page_blob(page)
        used = {c for u in data["units"] for item in u["top"] + u["med"] for c in [item["c"]]}
        assert used == set(range(len(data["clips"])))
        for clip in data["clips"]:
            audio, image = page.parent / clip["audio"], page.parent / clip["image"]
            assert audio.resolve().parent == (demo_run / "results/atlas/clips").resolve(), audio
            wave, sr = sf.read(audio)
            assert len(wave) / sr == pytest.approx(crop, abs=0.02)
            with Image.open(image) as img:
                img.load()
                assert img.size == (200, 72)


def test_an_atlas_for_a_rep_outside_the_study_is_refused_naming_it(tmp_path):
    from conftest import run_snakemake

    proc = run_snakemake(tmp_path, "-n", "results/atlas/crepe/layer4/sae0.3", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "atlas for rep 'sae0.3' of crepe layer 4: no such representation in this study" in out, out[-3000:]
