"""The atlas as one folder for ``snakemake --report``: a landing page, every page, every clip once.

Snakemake's report copies a ``directory()`` output whole into its zip, so a page
folder that carried its own audio would copy each clip once per page (the
paper's study: 56 pages x 1,619 clips). This folder instead mirrors
``results/atlas/`` with relative symbolic links — ``{model}/layer{L}/{rep}/index.html``
and ``clips/*`` — beside a landing page that lists the pages with their numbers;
the zip then holds every clip once, and the pages' relative links
(``../../../clips/...``) resolve inside it as they do on disk.
"""

from __future__ import annotations

import html
import os
from pathlib import Path


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(os.path.abspath(target), os.path.abspath(link.parent)))


def landing_page(rows: list[dict], title: str = "Latent atlas") -> str:
    truth = any(r.get("mcc") is not None for r in rows)  # an MCC column only where the corpus has true factors
    head = ("<tr><th>model</th><th>layer</th><th>representation</th><th>units</th><th>live</th>"
            "<th>clearly labelled</th><th>share of live</th>" + ("<th>MCC</th>" if truth else "") + "</tr>")
    body = []
    for r in rows:
        mcc = "" if r.get("mcc") is None else f"{r['mcc']:.3f}"
        share = "" if r.get("share") is None else f"{100 * r['share']:.1f} %"
        body.append(f"<tr><td>{html.escape(r['model'])}</td><td>{r['layer']}</td>"
                    f"<td><a href=\"{html.escape(r['href'])}\">{html.escape(r['rep'])}</a></td><td>{r['units']}</td>"
                    f"<td>{r['live']}</td><td>{r['clear']}</td><td>{share}</td>"
                    + (f"<td>{mcc}</td>" if truth else "") + "</tr>")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#1d2329}table{border-collapse:collapse}"
            "td,th{padding:3px 12px;border-bottom:1px solid #eaeef2;text-align:left}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>One page per model, layer and representation: a card per live unit "
            "with its label, numbers, histogram, and top and median clips to listen to. A clear label: one-vs-rest "
            "AUROC or |Spearman ρ| at or above the study's thresholds.</p>"
            f"<table>{head}{''.join(body)}</table></body></html>\n")


def build_site(atlas_dirs, clips_dir: Path | str, out_dir: Path | str) -> list[dict]:
    """Write the folder (atomically); returns one row per page."""
    from audiosae.atomic import atomic_output
    from audiosae.jsonio import read_json

    clips_dir = Path(clips_dir)
    rows = []
    with atomic_output(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for d in map(Path, atlas_dirs):
            s = read_json(d / "summary.json")
            rel = Path(s["model"]) / f"layer{s['layer']}" / s["rep"]
            _link(d / "index.html", tmp / rel / "index.html")
            rows.append({"model": s["model"], "layer": s["layer"], "rep": s["rep"], "units": s["units"],
                         "live": s["live"], "clear": s["clear"], "share": s["share"],
                         "mcc": (s.get("truth") or {}).get("mcc"), "href": (rel / "index.html").as_posix()})
        for f in sorted(clips_dir.iterdir()):
            _link(f, tmp / "clips" / f.name)
        (tmp / "index.html").write_text(landing_page(rows), encoding="utf-8")
    return rows
