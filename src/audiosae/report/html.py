"""``results/report.html``: one self-contained page a researcher can mail to a colleague.

Images are embedded as base64 data URIs and the CSS is inline, so the page needs
no other file and no network. Sections: what was run (configuration, models and
revisions, dataset checksum, seeds, package versions, git commit, wall time per
rule), the claims (each with its verdict, figure and table), links to every
stage's explore pages (e.g. latent atlases), the other
figures, then every table.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import importlib.metadata
import subprocess
from pathlib import Path
from typing import Iterable

import pandas as pd
import yaml

from audiosae.atomic import write_text
from audiosae.jsonio import write_json
from audiosae.report.aggregate import category_order, display_frame
from audiosae.report.claims import Claim
from audiosae.report.registry import claim_columns, table_note

PACKAGES = ("audiosae", "snakemake", "torch", "torchaudio", "transformers", "numpy", "scipy", "scikit-learn",
            "pandas", "zarr", "opensmile", "torchcrepe", "resemblyzer", "matplotlib", "seaborn")
OPEN_ROWS = 60  # tables up to this many rows start unfolded

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;background:#fafbfc;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.7em;margin:.2em 0}h2{border-bottom:2px solid #d0d7de;padding-bottom:4px;margin-top:2em}
h3{margin-top:1.6em}nav ol{columns:2}.muted{color:#57606a;font-size:.9em}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;font-size:.8em;font-weight:600;color:#fff;vertical-align:middle;margin-left:8px}
.v-supported{background:#1a7f37}.v-mixed{background:#bf8700}.v-not-supported{background:#cf222e}.v-untestable{background:#6e7781}
.v-inconclusive{background:#8250df}.v-also-on-random-weights{background:#0969da}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}.pair>div{border:1px solid #eaeef2;border-radius:6px;padding:6px 12px}
.pair h4{margin:.2em 0 .4em;font-size:.95em}
blockquote{margin:.6em 0;padding:.4em 1em;border-left:4px solid #d0d7de;color:#57606a}
.claim{border:1px solid #d0d7de;border-radius:8px;padding:4px 18px 14px;margin:18px 0}
.answer{font-size:1.05em}figure{margin:14px 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.9em;color:#424a53}.scroll{overflow-x:auto;max-height:560px;overflow-y:auto;border:1px solid #eaeef2}
table.tbl{border-collapse:collapse;font-size:.8em;white-space:nowrap}
table.tbl th{position:sticky;top:0;background:#f6f8fa;text-align:left}
table.tbl th,table.tbl td{border-bottom:1px solid #eaeef2;padding:3px 8px}
table.tbl tr:hover td{background:#f6f8fa}table.kv td:first-child{font-weight:600;padding-right:16px}
pre{background:#f6f8fa;padding:10px;overflow-x:auto;font-size:.8em}details{margin:8px 0}summary{cursor:pointer;font-weight:600}
"""


def _e(x) -> str:
    return html.escape(str(x))


def md5sum(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(repo: Path | str | None = None) -> str | None:
    """HEAD of the checkout the package runs from (with '+ local changes' when dirty), or None."""
    repo = Path(repo) if repo else Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + (" + local changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


EXTRACTION_NOTE = ("extract_embeddings is not in this table: Snakemake writes no benchmark file for a rule its "
                   "output cache may serve (a cached result has no run to time). Each model's extraction time is the "
                   "extraction_time_s column of the Models table above, from its store's attributes.")


def benchmark_summary(bench_dir: Path | str | None) -> pd.DataFrame:
    """Wall time and peak memory per rule from Snakemake's benchmark TSVs (rules/<rule>/... or rules/<rule>.tsv)."""
    rows = []
    if bench_dir and Path(bench_dir).is_dir():
        root = Path(bench_dir)
        for path in sorted(root.rglob("*.tsv")):
            rel = path.relative_to(root)
            rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
            try:
                df = pd.read_csv(path, sep="\t")
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
                continue
            if "s" not in df or df.empty:
                continue
            rss = pd.to_numeric(df.get("max_rss", pd.Series(dtype=float)), errors="coerce")
            rows.append({"rule": rule, "s": float(pd.to_numeric(df["s"], errors="coerce").mean()),
                         "max_rss_mb": float(rss.max()) if rss.notna().any() else float("nan")})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "total_s", "longest_job_s", "peak_rss_mb"])
    df = pd.DataFrame(rows)
    out = df.groupby("rule", sort=False).agg(jobs=("s", "size"), total_s=("s", "sum"), longest_job_s=("s", "max"),
                                             peak_rss_mb=("max_rss_mb", "max")).reset_index()
    return out.sort_values("total_s", ascending=False).reset_index(drop=True)


def _seeds(cfg, prefix: str = "") -> dict[str, object]:
    out = {}
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if "seed" in str(k):
                out[key] = v
            else:
                out.update(_seeds(v, key))
    return out


def _scalar(v) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None


def html_table(df: pd.DataFrame, digits: int = 3) -> str:
    if df is None or df.empty:
        return '<p class="muted">(no rows)</p>'
    shown = display_frame(df.reset_index(drop=True), digits)
    return '<div class="scroll">' + shown.to_html(index=False, classes="tbl", border=0, escape=True) + "</div>"


def kv_table(items: dict) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in items.items())
    return f'<table class="tbl kv">{rows}</table>'


def img_tag(png: Path | str, alt: str) -> str:
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def figure_block(name: str, png: Path | str, caption: str) -> str:
    return (f'<figure id="fig-{_e(name)}">{img_tag(png, name)}'
            f"<figcaption><b>{_e(name)}</b>: {_e(caption)}</figcaption></figure>")


def _categories_wide(cats: pd.DataFrame) -> pd.DataFrame:
    c = cats[(cats["target"] == "egemaps") & (cats["ranking"] == "r2")]
    if c.empty:
        return c
    wide = c.pivot_table(index=["model", "layer", "rep"], columns="category", values="count", sort=False)
    wide = wide.reindex(columns=category_order(c["category"].unique())).reset_index()
    return wide


def _claim_table(name: str, tables: dict[str, pd.DataFrame], rows: dict | None = None) -> pd.DataFrame:
    df = tables.get(name, pd.DataFrame())
    if name == "categories":
        return _categories_wide(df)
    if name == "disentanglement" and not df.empty:
        df = df[df["target"] == "egemaps"]
    for col, value in (rows or {}).items():  # the rows a claim is about (e.g. one probe target)
        if col in df.columns:
            df = df[df[col].astype(str) == str(value)]
    cols = [c for c in (claim_columns(name) or df.columns) if c in df.columns]
    return df[cols]


def _verdict(v: str) -> str:
    return f'<span class="verdict v-{v.replace(" ", "-")}">{_e(v)}</span>'


def _answer(claim: Claim) -> str:
    """The claim's answer; judged against a random-weights twin, the trained and the twin's answers side by side,
    then the verdict that follows from the pair."""
    n = claim.numbers or {}
    if "twin_verdict" not in n:
        return f'<p class="answer">{_e(claim.sentence)}</p>'
    against = claim.sentence.split("Against the twin:", 1)[-1].strip()
    return ('<div class="pair">'
            f'<div><h4>Trained models {_verdict(n["trained_verdict"])}</h4>{_e(n.get("trained_sentence", ""))}</div>'
            f'<div><h4>Random-weights twin {_verdict(n["twin_verdict"])}</h4>{_e(n.get("twin_sentence", ""))}</div>'
            f'</div><p class="answer">Against the twin: {_e(against)}</p>')


def _claim_block(claim: Claim, tables, figures, captions, shown: set | None = None) -> str:
    """One claim: verdict, the paper's words, the answer, its figure (a link when an earlier claim showed it)
    and the rows of its table it is about. `shown` collects the figures already on the page."""
    shown = set() if shown is None else shown
    parts = [f'<div class="claim" id="claim-{_e(claim.key)}"><h3>Claim {_e(claim.label)}: {_e(claim.title)}'
             f"{_verdict(claim.verdict)}</h3>",
             f"<blockquote>Paper: {_e(claim.paper)}</blockquote>",
             _answer(claim),
             f'<p class="muted">Verdict rule: {_e(claim.rule)}</p>']
    if claim.figure in figures and claim.figure in shown:
        parts.append(f'<p class="muted">Figure: <a href="#fig-{_e(claim.figure)}">{_e(claim.figure)}</a> (above).</p>')
    elif claim.figure in figures:
        parts.append(figure_block(claim.figure, figures[claim.figure], captions.get(claim.figure, "")))
        shown.add(claim.figure)
    which = "".join(f", {_e(k)} = {_e(v)}" for k, v in claim.rows.items())
    parts.append(f'<details open><summary>Table: {_e(claim.table)}{which} (see the full table below)</summary>'
                 f"{html_table(_claim_table(claim.table, tables, claim.rows))}</details></div>")
    return "".join(parts)


def _models_section(cfg: dict, stores: Iterable[Path | str]) -> str:
    from audiosae.store import StoreError, read_attrs

    rows = []
    for store in stores:
        name = Path(store).name.removesuffix(".zarr")
        row = {"model": name}
        row.update({k: v for k, v in (cfg.get("models", {}).get(name) or {}).items() if _scalar(v)})
        try:
            attrs = read_attrs(store)
        except (StoreError, OSError) as err:
            row["store"] = f"unreadable: {err}"
            attrs = {}
        row.update({k: v for k, v in attrs.items() if _scalar(v) and k != "complete"})
        rows.append(row)
    if not rows:
        models = cfg.get("models", {})
        rows = [{"model": m, **{k: v for k, v in spec.items() if _scalar(v)}} for m, spec in models.items()]
    return html_table(pd.DataFrame(rows).astype(str).replace({"None": "", "nan": ""}))


def _dataset_section(cfg: dict, manifest: Path | str | None) -> str:
    data = cfg.get("data", {})
    info = {"corpus": data.get("corpus", "?")}
    if data.get("corpus") == "vocalset" and isinstance(data.get("vocalset"), dict):
        info["archive"] = data["vocalset"].get("url", "")
        info["archive md5 (config)"] = data["vocalset"].get("md5", "")
    if manifest and Path(manifest).exists():
        from audiosae.data.manifest import label_columns, read_manifest

        man = read_manifest(manifest)
        info["manifest"] = str(manifest)
        info["manifest md5"] = md5sum(manifest)
        info["clips"] = len(man)
        info["clips per split"] = ", ".join(f"{s}: {int((man['split'] == s).sum())}" for s in ("train", "valid", "test"))
        info["groups"] = f"{man['group'].nunique()} ({man.loc[man['split'] == 'test', 'group'].nunique()} held out for test)"
        for col in label_columns(man):
            info[f"label {col}"] = f"{man[col].nunique()} classes"
    return kv_table(info)


def build_html(*, tables: dict[str, pd.DataFrame], figures: dict[str, Path], captions: dict[str, str],
               claims: list[Claim], config_yaml: str, manifest: Path | str | None = None,
               stores: Iterable[Path | str] = (), benchmarks_dir: Path | str | None = None,
               commit: str | None = None, versions: dict[str, str] | None = None,
               pages: dict[str, list[tuple[str, str]]] | None = None) -> str:
    """The page. `pages`: section title -> [(link text, href relative to the page)] of explore pages."""
    cfg = yaml.safe_load(config_yaml) or {}
    title = (cfg.get("report") or {}).get("title") or "audiosae report"
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    versions = versions if versions is not None else package_versions()
    bench = benchmark_summary(benchmarks_dir)
    claim_figs = {c.figure for c in claims}
    verdicts = ", ".join(f'<a href="#claim-{_e(c.key)}">claim {_e(c.label)}</a> {_verdict(c.verdict)}' for c in claims)

    out = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title>'
           f"<style>{CSS}</style></head><body><main>",
           f"<h1>{_e(title)}</h1>",
           f'<p class="muted">Generated {_e(now)} by audiosae; git commit {_e(commit or "unknown")}.</p>',
           f"<p>Verdicts: {verdicts}</p>",
           '<nav><ol><li><a href="#run">What was run</a></li><li><a href="#claims">The claims</a></li>'
           + ('<li><a href="#explore">Explore</a></li>' if pages else "") +
           '<li><a href="#figures">Other figures</a></li><li><a href="#tables">Tables</a></li></ol></nav>']

    out.append('<h2 id="run">What was run</h2>')
    out.append("<h3>Models</h3>" + _models_section(cfg, stores))
    out.append("<h3>Dataset</h3>" + _dataset_section(cfg, manifest))
    out.append("<h3>Seeds</h3>" + kv_table(_seeds(cfg)))
    out.append("<h3>Wall time per rule</h3>")
    if bench.empty:
        out.append('<p class="muted">No benchmark files found.</p>')
    else:
        total = bench["total_s"].sum()
        out.append(f"<p>{int(bench['jobs'].sum())} benchmarked jobs, {total:.1f} s of job time in all "
                   f"(sum over jobs, not the elapsed time of a parallel run).</p>" + html_table(bench, digits=1))
    if "extract_embeddings" not in set(bench.get("rule", [])):
        out.append(f'<p class="muted">{EXTRACTION_NOTE}</p>')
    out.append("<h3>Software</h3>" + kv_table({"git commit": commit or "unknown", **versions}))
    out.append(f"<details><summary>Configuration (YAML, defaults filled in)</summary><pre>{_e(config_yaml)}</pre>"
               "</details>")

    out.append('<h2 id="claims">The claims</h2>')
    shown: set[str] = set()
    out.extend(_claim_block(c, tables, figures, captions, shown) for c in claims)

    if pages:
        out.append('<h2 id="explore">Explore</h2><p class="muted">Pages beside this report (open them from the '
                   'results folder, or serve it: <code>python -m http.server -d results</code>).</p>')
        for title, links in pages.items():
            items = "".join(f'<li><a href="{_e(href)}">{_e(text)}</a></li>' for text, href in links)
            out.append(f"<h3>{_e(title)}</h3><ul class=\"pages\">{items}</ul>")

    out.append('<h2 id="figures">Other figures</h2>')
    for name, png in figures.items():
        if name not in claim_figs:
            out.append(figure_block(name, png, captions.get(name, "")))

    out.append('<h2 id="tables">Tables</h2><p class="muted">Also in results/tables/ as CSV and Markdown.</p>')
    for name, df in tables.items():
        opened = " open" if len(df) <= OPEN_ROWS else ""
        out.append(f'<details id="table-{_e(name)}"{opened}><summary>{_e(name)}.csv — {len(df)} rows × '
                   f"{df.shape[1]} columns</summary><p class=\"muted\">{_e(table_note(name))}</p>"
                   f"{html_table(df)}</details>")
    out.append("</main></body></html>\n")
    return "\n".join(out)


def page_links(out_html: Path | str, pages: dict[str, Iterable[Path | str]]) -> dict[str, list[tuple[str, str]]]:
    """Section title -> [(text, href)] for explore pages, hrefs relative to the report's folder.

    A page given as a folder links its ``index.html``. The text is the page's
    folder relative to the report's folder (``atlas/crepe/layer4/sae0.5``).
    """
    import os

    base = Path(out_html).resolve().parent
    out = {}
    for title, paths in pages.items():
        links = []
        for p in paths:
            p = Path(p) / "index.html" if Path(p).is_dir() else Path(p)
            rel = Path(os.path.relpath(p.resolve(), base))
            links.append((str(rel.parent) if rel.name == "index.html" else str(rel), rel.as_posix()))
        if links:
            out[title] = links
    return out


def write_report(out_html: Path | str, *, tables, figures, captions, claims, config_yaml, manifest=None, stores=(),
                 benchmarks_dir=None, claims_json: Path | str | None = None,
                 pages: dict[str, Iterable[Path | str]] | None = None) -> None:
    """Write the page (and, if asked, the claims as JSON) atomically.

    `pages`: section title -> explore pages (paths) to link from the page.
    """
    page = build_html(tables=tables, figures={k: Path(v) for k, v in figures.items()}, captions=captions,
                      claims=claims, config_yaml=config_yaml, manifest=manifest, stores=stores,
                      benchmarks_dir=benchmarks_dir, commit=git_commit(),
                      pages=page_links(out_html, pages or {}))
    write_text(out_html, page)
    if claims_json is not None:
        write_json(claims_json, [c.to_dict() for c in claims])

