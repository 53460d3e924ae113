"""The atlas page of one representation: a card per live unit, rendered from one JSON blob.

The page is ``index.html`` with its data inline (``<script type="application/json"
id="atlas-data">``) and a small script that renders the cards, so it opens from
disk (file://) as well as from a web server. Audio and spectrograms are not
copied: the page names the files written once in ``results/atlas/clips/`` by
their path relative to the page (``../../../clips/<clip>.ogg``).

Data layout (``units`` sorted by clarity, clearest first)::

    {"title", "model", "layer", "rep", "n_clips", "summary": {...}, "thresholds": {"auroc", "rho"},
     "label_columns": [...],
     "clips": [{"id", "labels": [one per label column], "audio": "../../../clips/x.ogg", "image": "…/x.png"}],
     "units": [{"u", "label", "clear", "clarity", "fr", "mf", "max", "best_auc", "best_rho",
                "auc": [[column, class, auroc, margin]], "attrs": [[name, rho]], "factors": [[name, rho]],
                "hist": [counts], "hlo", "hhi",
                "top": [{"c": clip index, "a": activation, "trace": [optional values over time]}],
                "med": [...], "causal": [badge, line] (cards the causal job tested)}],
     "causal": {"tested", "counts": {badge: n}, "note"} (pages of a node's causal job)}

A clip entry of ``top``/``med`` may carry ``trace`` (the unit's activation over
the clip's frames, e.g. from a frame-level SAE: one value per frame slot of the
crop, null where the crop is padding); the card then draws it over the
spectrogram. ``a`` is the value the clips were ranked by (a frame SAE's: its
highest frame activation in the crop).

A card the causal job tested (audiosae.causal: its label steered in the network)
carries its badge — causal, not causal or untestable — and the line that says why;
the search box takes ``causal``, ``not causal`` and ``untestable`` as badge filters
and the sort menu orders by badge.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from audiosae.atlas.stats import UnitStats
from audiosae.layout import rep_of

PAGE_SIZE = 40


def _num(v, digits: int = 4):
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def _rep_title(rep: str) -> str:
    return rep_of(rep).title()


def page_data(stats: UnitStats, clip_media: dict[str, tuple[str, str]], *, model: str, layer: int, rep: str,
              summary: dict, thresholds: dict, traces: dict | None = None, recurrence: dict | None = None,
              causal: dict | None = None) -> dict:
    """The JSON blob of a page. `clip_media`: clip id -> (audio, image) paths relative to the page, and
    optionally the audio's length in seconds (shown beside its player, which loads nothing until played);
    `traces`: optional {(unit, clip id): sequence over time} drawn over the spectrogram;
    `recurrence`: optional {unit: [(other seed, its best-matching latent or -1, cosine), ...]} (SAE seeds);
    `causal`: optional {"cards": {unit: (badge, line)}, "note": what was tested} (audiosae.causal)."""
    t = stats.table
    col = {c: t[c].to_numpy() for c in t.columns}  # plain arrays: a row lookup per unit in pandas is slow
    live = ~(col["dead"] | col["constant"])
    clarity = np.where(np.isfinite(col["clarity"].astype(float)), col["clarity"].astype(float), -np.inf)
    order = np.lexsort((col["unit"], -clarity))
    order = order[live[order]]
    label_rows = stats.labels.astype(str).to_numpy().tolist()
    used: dict[int, int] = {}
    clips: list[dict] = []

    def clip_ref(row: int) -> int:
        if row not in used:
            cid = stats.clip_ids[row]
            audio, image, *seconds = clip_media[cid]
            used[row] = len(clips)
            clips.append({"id": cid, "labels": label_rows[row], "audio": audio, "image": image,
                          **({"s": round(float(seconds[0]), 3)} if seconds else {})})
        return used[row]

    x = stats.activations
    shown = stats.ranked if stats.ranked is not None else x  # a clip's activation as its clips were ranked
    sets = []
    for name in stats.rho:
        prefix = "attr" if name == "egemaps" else name.rstrip("s")
        k = 1
        while f"{prefix}{k}" in col:
            k += 1
        sets.append(("attrs" if name == "egemaps" else name, prefix, k - 1))
    units = []
    for i in order:
        u = int(col["unit"][i])
        entry = {"u": u, "label": str(col["label"][i]), "clear": bool(col["clear"][i]),
                 "clarity": _num(col["clarity"][i]), "fr": _num(col["firing_rate"][i]),
                 "mf": _num(col["mean_firing"][i]), "max": _num(col["max"][i]),
                 "best_auc": _num(col["best_auroc"][i]), "best_rho": _num(col["best_abs_rho"][i]),
                 "auc": [[c, str(col[f"{c}_class"][i]), _num(col[f"{c}_auroc"][i]), _num(col[f"{c}_margin"][i])]
                         for c in stats.label_columns],
                 "hist": stats.hist[u].tolist(), "hlo": _num(stats.hist_low[u]), "hhi": _num(stats.hist_high[u])}
        if causal is not None and u in causal["cards"]:
            entry["causal"] = list(causal["cards"][u])
        if recurrence is not None:
            entry["rec"] = [[int(seed), int(best), _num(cos)] for seed, best, cos in recurrence.get(u, [])]
        for key, prefix, n in sets:
            entry[key] = [[str(col[f"{prefix}{r}"][i]), _num(col[f"{prefix}{r}_rho"][i])]
                          for r in range(1, n + 1) if col[f"{prefix}{r}"][i]]
        for key, rows in (("top", stats.top[u]), ("med", stats.median[u])):
            items = []
            for row in rows[rows >= 0]:
                item = {"c": clip_ref(int(row)), "a": _num(shown[int(row), u])}
                if traces and (u, stats.clip_ids[row]) in traces:
                    item["trace"] = [_num(v) for v in traces[(u, stats.clip_ids[row])]]
                items.append(item)
            entry[key] = items
        units.append(entry)
    out = {"title": f"{model} layer {layer} · {_rep_title(rep)}", "model": model, "layer": int(layer), "rep": rep,
           "n_clips": len(stats.clip_ids), "summary": summary, "thresholds": thresholds,
           "label_columns": list(stats.label_columns), "clips": clips, "units": units}
    if causal is not None:
        badges = [b for b, _ in causal["cards"].values()]
        out["causal"] = {"tested": len(badges), "counts": {b: badges.count(b) for b in sorted(set(badges))},
                         "note": causal.get("note", "")}
    return out


def search_hint(data: dict) -> str:
    """'search label, class or attribute (e.g. <a class of this corpus>, F0)': the example is a class of the page's
    own first label column (the clearest unit's, when it has one), never a word another corpus has."""
    example = ""
    if data.get("label_columns"):
        first = data["label_columns"][0]
        for u in data.get("units", []):  # clearest first
            for col, cls, *_ in u.get("auc", []):
                if col == first and cls not in ("", "None", "nan"):
                    example = cls
                    break
            if example:
                break
        if not example:
            values = sorted({c["labels"][0] for c in data.get("clips", []) if c.get("labels")})
            example = values[0] if values else first
    if data.get("causal"):  # a page the causal job tested: its badges are searchable too
        return "search label, class, attribute or badge (e.g. " + (f"{example}, " if example else "") + "F0, causal)"
    return "search label, class or attribute (e.g. " + (f"{example}, " if example else "") + "F0)"


def render_page(data: dict) -> str:
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    blob = blob.replace("</", "<\\/")  # never end the script element early
    return (TEMPLATE.replace("__TITLE__", html.escape(data["title"]))
            .replace("__HINT__", html.escape(search_hint(data)))
            .replace("__DATA__", blob).replace("__PAGE_SIZE__", str(PAGE_SIZE)))


TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Atlas: __TITLE__</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;background:#f3f5f7;line-height:1.4}
header{background:#fff;border-bottom:1px solid #d0d7de;padding:14px 24px;position:sticky;top:0;z-index:2}
h1{font-size:1.35em;margin:0 0 4px}.muted{color:#57606a;font-size:.85em}
.controls{display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin-top:8px}
#search{width:340px;padding:5px 8px;font-size:.95em;border:1px solid #afb8c1;border-radius:6px}
select{padding:4px}main{padding:16px 24px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 14px;margin:0 0 14px}
.card h2{font-size:1.02em;margin:0 0 6px}.uid{color:#57606a;font-weight:400;margin-right:8px}
.clear{color:#1a7f37}.unclear{color:#6e7781}
.row{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start}
table.nums{border-collapse:collapse;font-size:.8em}table.nums td,table.nums th{padding:1px 8px 1px 0;text-align:left;white-space:nowrap}
table.nums th{color:#57606a;font-weight:600}
.hist svg{display:block}.clips{display:flex;gap:8px;flex-wrap:wrap;margin-top:4px}
.clip{width:206px;font-size:.72em;border:1px solid #eaeef2;border-radius:6px;padding:3px}
.clip .spec{position:relative;width:200px;height:72px}.clip img{width:200px;height:72px;display:block;image-rendering:auto}
.clip svg.trace{position:absolute;left:0;top:0}.clip .player{display:flex;align-items:center;gap:3px;margin-top:2px}
.clip audio{width:164px;height:28px}.clip .len{color:#57606a;white-space:nowrap}
.clip .act{font-weight:600}.clip .id{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.section{font-size:.8em;font-weight:600;color:#57606a;margin-top:8px}
button{padding:6px 14px;margin:6px 0 30px}
.causal{font-size:.82em;margin:0 0 6px}.badge{display:inline-block;border-radius:10px;padding:0 8px;margin-right:6px;font-weight:600;color:#fff}
.b-causal{background:#1a7f37}.b-not-causal{background:#cf222e}.b-untestable{background:#6e7781}
</style></head><body>
<header><h1>Atlas: __TITLE__</h1><div class="muted" id="summary"></div>
<div class="controls"><input id="search" type="search" placeholder="__HINT__" autocomplete="off">
<label>sort by <select id="sort"><option value="clarity">clarity</option><option value="auroc">best AUROC</option>
<option value="rho">best |ρ|</option><option value="fr">firing rate</option><option value="unit">unit id</option>
<option value="causal">causal badge</option></select></label>
<span class="muted" id="count"></span></div></header>
<main><details class="muted"><summary>What the numbers mean</summary><p>
Each card is one unit (an SAE latent, or a dimension of the layer output) with one activation per clip: the clip's
crop 0, the exact crop the model saw, which the players play. <b>firing</b>: share of clips where the activation is
above 0; <b>mean firing</b>: its mean over those clips; <b>max</b>: its largest value. <b>AUROC</b> (per label column):
how well the activation alone separates the best class from the rest (1 = every clip of the class above every other
clip, 0.5 = chance; ties count one half); <b>margin</b>: to the second-best class. <b>ρ</b>: Spearman rank correlation
with an eGeMAPS attribute (or a true factor on the synthetic corpus), over all clips. The label names what passes
AUROC ≥ <span id="t-auc"></span> or |ρ| ≥ <span id="t-rho"></span>; <i>unclear</i> when nothing does.
<b>clarity</b> orders the cards: the larger of the best AUROC and the best |ρ|, each scaled to 0 at chance, 1 at its
threshold and 2 at a perfect score (1 or more: a clear label). The histogram shows
the unit's values (firing values only for units that are never negative). For a frame-level SAE the activation is
the latent's mean over the crop's frames, the clips are ranked by its highest frame activation (the number shown on
each clip), and the green line over each spectrogram is the latent frame by frame. Top clips: highest activation; median
clips: around the median of the firing clips.
<b>Causal badge</b> (the top labelled cards of a node's tested pages): the unit's direction was added to every frame
of the layer inside the network, at a few multiples of its 95th-percentile activation, and the output the label
predicts was read (the output-level probe's probability of the class, CREPE's predicted pitch, or a linear read-out
of the attribute). <i>causal</i>: the change's 95 % interval over test clips lies above 0 and beyond the mean of
random directions of the same norm by more than two of their standard deviations; <i>not causal</i> otherwise;
<i>untestable</i> when the output cannot be read for that label. Type <i>causal</i>, <i>not causal</i> or
<i>untestable</i> to keep those cards.</p></details><div id="cards"></div><button id="more">show more</button></main>
<script type="application/json" id="atlas-data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("atlas-data").textContent);
const PAGE = __PAGE_SIZE__;
const esc = s => String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"})[c]);
const f = (v, d) => v === null || v === undefined ? "–" : Number(v).toFixed(d === undefined ? 2 : d);
const pct = v => v === null ? "–" : (100 * v).toFixed(1) + " %";
document.getElementById("t-auc").textContent = D.thresholds.auroc;
document.getElementById("t-rho").textContent = D.thresholds.rho;
const S = D.summary;
document.getElementById("summary").textContent = `${S.live} live units of ${S.units} (${S.dead} dead, ${S.constant} constant) on ${D.n_clips} clips; ` +
  `${S.clear} with a clear label (${pct(S.share)} of live units: ${S.clear_by_auroc} by AUROC, ${S.clear_by_rho} by ρ).` +
  (D.causal ? ` Causal test: ${D.causal.tested} cards (${Object.entries(D.causal.counts).map(([b, n]) => `${n} ${b}`).join(", ") || "none labelled"}). ${D.causal.note}` : "");
for (const u of D.units) {
  const words = [u.label, "unit " + u.u];
  for (const a of u.auc) words.push(a[0], a[1]);
  for (const a of (u.attrs || [])) words.push(a[0]);
  for (const a of (u.factors || [])) words.push(a[0]);
  u.text = words.join(" ").toLowerCase();
}
const RANK = {"causal": 3, "not causal": 2, "untestable": 1};
const KEYS = {clarity: u => u.clarity, auroc: u => u.best_auc, rho: u => u.best_rho, fr: u => u.fr, unit: u => -u.u,
  causal: u => u.causal ? RANK[u.causal[0]] + (u.clarity || 0) / 10 : null};
const badgeClass = b => "b-" + b.replace(/ /g, "-");
function causalLine(u) {
  return u.causal ? `<div class="causal"><span class="badge ${badgeClass(u.causal[0])}">${esc(u.causal[0])}</span>${esc(u.causal[1])}</div>` : "";
}
let shown = 0, list = [];
function histogram(u) {
  const W = 180, H = 42, n = u.hist.length, m = Math.max(1, ...u.hist), bw = W / n;
  let bars = "";
  u.hist.forEach((c, i) => { const h = c ? Math.max(1, H * c / m) : 0;
    bars += `<rect x="${(i * bw).toFixed(1)}" y="${(H - h).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#57606a"/>`; });
  return `<div class="hist"><svg width="${W}" height="${H + 12}" role="img" aria-label="activation histogram">${bars}` +
    `<text x="0" y="${H + 11}" font-size="9">${f(u.hlo, 3)}</text><text x="${W}" y="${H + 11}" font-size="9" text-anchor="end">${f(u.hhi, 3)}</text></svg></div>`;
}
function trace(t) {
  if (!t || !t.length) return "";
  const m = Math.max(1e-12, ...t.map(v => v || 0)), n = t.length;
  const pts = t.map((v, i) => `${(200 * (i + 0.5) / n).toFixed(1)},${(70 - 66 * (v || 0) / m).toFixed(1)}`).join(" ");
  return `<svg class="trace" width="200" height="72"><polyline points="${pts}" fill="none" stroke="#3fb950" stroke-width="1.6"/></svg>`;
}
function clip(item) {
  const c = D.clips[item.c];
  const labels = D.label_columns.map((col, i) => `${esc(col)}: ${esc(c.labels[i])}`).join(" · ");
  return `<div class="clip"><div class="spec"><img loading="lazy" src="${esc(c.image)}" alt="spectrogram of ${esc(c.id)}">${trace(item.trace)}</div>` +
    `<div class="player"><audio controls preload="none" src="${esc(c.audio)}"></audio>` +
    (c.s != null ? `<span class="len" title="length of the clip">${f(c.s, 1)} s</span>` : "") + `</div><div class="id" title="${esc(c.id)}"><span class="act">${f(item.a, 3)}</span> ${esc(c.id)}</div>` +
    `<div class="muted">${labels}</div></div>`;
}
function recur(rec) {
  if (!rec) return "";
  const t = D.thresholds.recurrence;
  const words = rec.length ? rec.map(r => r[1] < 0 ? `seed ${r[0]}: no live latent` :
    `seed ${r[0]}: latent ${r[1]}, cosine ${f(r[2])} <span class="${r[2] >= t ? "clear" : "unclear"}">${r[2] >= t ? "recurs" : "does not recur"}</span>`).join("<br>")
    : "no other seed has live latents to match";
  return `<tr><th>other seeds</th><td colspan="3">${words}</td></tr>`;
}
function card(u) {
  const auc = u.auc.map(a => `<tr><th>${esc(a[0])}</th><td>${esc(a[1])}</td><td>AUROC ${f(a[2])}</td><td>margin ${f(a[3])}</td></tr>`).join("");
  const rho = (name, pairs) => pairs && pairs.length ? `<tr><th>${name}</th><td colspan="3">` +
    pairs.map(p => `${esc(p[0])} ρ ${f(p[1])}`).join("<br>") + `</td></tr>` : "";
  return `<div class="card" data-unit="${u.u}"><h2><span class="uid">unit ${u.u}</span>` +
    `<span class="${u.clear ? "clear" : "unclear"}">${esc(u.label)}</span></h2>${causalLine(u)}<div class="row">` +
    `<table class="nums"><tr><th>firing</th><td>${pct(u.fr)}</td><td>mean firing ${f(u.mf, 3)}</td><td>max ${f(u.max, 3)}</td></tr>` +
    `<tr><th>clarity</th><td>${f(u.clarity)}</td><td></td><td></td></tr>${auc}${rho("eGeMAPS", u.attrs)}${rho("factors", u.factors)}${recur(u.rec)}</table>` +
    histogram(u) + `</div><div class="section">top clips</div><div class="clips">${u.top.map(clip).join("")}</div>` +
    (u.med.length ? `<div class="section">median clips</div><div class="clips">${u.med.map(clip).join("")}</div>` : "") + `</div>`;
}
function more() {
  const box = document.getElementById("cards");
  box.insertAdjacentHTML("beforeend", list.slice(shown, shown + PAGE).map(card).join(""));
  shown = Math.min(list.length, shown + PAGE);
  document.getElementById("count").textContent = `${list.length} of ${D.units.length} live units match; showing ${shown}`;
  document.getElementById("more").style.display = shown < list.length ? "" : "none";
}
function update() {
  // badge words filter by the card's badge ("causal" alone would otherwise match "not causal" too)
  let badge = null;
  const q = document.getElementById("search").value.toLowerCase()
    .replace(/\bnot[ -]causal\b/g, () => { badge = "not causal"; return " "; })
    .replace(/\buntestable\b/g, () => { badge = badge || "untestable"; return " "; })
    .replace(/\bcausal\b/g, () => { badge = badge || "causal"; return " "; });
  const words = q.split(/\s+/).filter(Boolean);
  const key = KEYS[document.getElementById("sort").value];
  const val = u => { const v = key(u); return v === null || v === undefined ? -Infinity : v; };
  list = D.units.filter(u => words.every(w => u.text.includes(w)) && (!badge || (u.causal && u.causal[0] === badge)));
  list.sort((a, b) => val(b) - val(a) || a.u - b.u);
  document.getElementById("cards").innerHTML = "";
  shown = 0;
  more();
}
document.getElementById("search").addEventListener("input", update);
document.getElementById("sort").addEventListener("change", update);
document.getElementById("more").addEventListener("click", more);
update();
</script></body></html>
"""
