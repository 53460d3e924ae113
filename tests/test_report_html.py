"""The report stage's rules on a fake results tree, and the page rendered in headless Chromium.

Snakemake runs a small Snakefile that includes only rules/common.smk and
rules/report.smk, so the upstream stages' files are the fake ones (source files
to Snakemake) and nothing upstream runs.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SNAKEMAKE, missing_prerequisite, tiny_config, write_config
from fake_results import MODELS, write_fake_results

from audiosae.report import registry

# Every section's tables and figures (the tiny config is the synthetic corpus).
ALL_TABLES = tuple(registry.table_names({"synthetic", "clip"}))
ALL_FIGURES = tuple(registry.figure_names({"synthetic", "clip"}))
N_CLAIMS = 6  # the paper's four (claim 1 per probe target: technique, singer), and the atlas's

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio"]


def _stage_snakefile(workdir: Path) -> Path:
    path = workdir / "Snakefile.report_stage"
    path.write_text(
        "from audiosae.config import validate\n"
        "validate(config)\n"
        f'include: "{REPO}/rules/common.smk"\n'
        f'include: "{REPO}/rules/atlas.smk"\n'
        f'include: "{REPO}/rules/report.smk"\n'
    )
    return path


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(_stage_snakefile(workdir)), "-d", str(workdir), "--configfile",
           str(workdir / "study.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("report_stage")
    write_fake_results(workdir)
    models = {"crepe": {"source": "crepe", "capacity": "tiny", "hop_ms": 40, "layers": MODELS["crepe"]},
              "resemblyzer": {"source": "resemblyzer", "layers": MODELS["resemblyzer"]}}
    write_config(workdir, tiny_config(models=models))
    _snakemake(workdir, "results/report.html")
    _snakemake(workdir, "results/report.html", "--report", str(workdir / "results/report.zip"))
    return workdir


def test_rules_write_every_output(stage_run):
    r = stage_run / "results"
    for name in ALL_TABLES:
        assert (r / f"tables/{name}.csv").stat().st_size > 0 and (r / f"tables/{name}.md").exists()
    for name in ALL_FIGURES:
        assert (r / f"figures/{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert (r / f"figures/{name}.pdf").read_bytes()[:5] == b"%PDF-"
    for rule in ("aggregate", "figures", "atlas_report", "report"):
        assert (r / f"logs/{rule}.log").exists()
        assert (r / f"benchmarks/rules/{rule}.tsv").exists()
    assert (r / "claims.json").exists()
    with zipfile.ZipFile(r / "report.zip") as z:
        names = z.namelist()
    assert any(n.endswith("report/report.html") for n in names)
    for name in ("probe_accuracy_vs_sparsity.png", "probe.csv", "report.html", "interpretable.csv"):
        assert any(n.endswith("/" + name) for n in names), name


def test_page_is_self_contained(stage_run):
    page = (stage_run / "results/report.html").read_text()
    assert "<style>" in page and "<link" not in page and "<script" not in page
    assert 'src="http' not in page and "url(http" not in page
    for section in ("What was run", "The claims", "Wall time per rule", "manifest md5", "git commit"):
        assert section in page
    assert "extract_embeddings" in page  # from the benchmark TSVs


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.ids, self.tables, self.claims = [], set(), 0, 0
        self.body_attrs = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "table" and "tbl" in (a.get("class") or ""):
            self.tables += 1
        if tag == "div" and a.get("class") == "claim":
            self.claims += 1
        if tag == "body":
            self.body_attrs = a


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        missing_prerequisite("headless Chromium is not installed and this user cannot install it: "
                    "run `apt-get install -y chromium` as root (Debian package `chromium`)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(cmd, capture_output=True, env=env, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            missing_prerequisite(f"could not install chromium with apt-get: {done.stderr[-500:]}")
    path = shutil.which("chromium")
    if not path:
        missing_prerequisite("apt-get installed chromium but no `chromium` executable is on PATH")
    return path


# Counts images the browser could not decode; the result lands on <body data-broken-images="N">.
PROBE_SCRIPT = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken-images', String(broken));
});
</script>"""


def test_report_renders_in_headless_chromium(stage_run, tmp_path):
    browser = _chromium()
    page = stage_run / "results/report.html"
    probed = tmp_path / "probed.html"  # a copy with the image check; the report itself has no script
    probed.write_text(page.read_text().replace("</body>", PROBE_SCRIPT + "</body>"))
    flags = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists(), f"no screenshot: {run.stderr[-2000:]}"
    dom_run = subprocess.run([*flags, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert dom_run.returncode == 0 and "</html>" in dom_run.stdout, dom_run.stderr[-2000:]
    dom = _Dom()
    dom.feed(dom_run.stdout)

    # the screenshot shows a page, not a blank or error screen
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[1] == 1280 and float(np.std(pixels[..., :3])) > 0.05

    # every table and every figure is there
    for name in ALL_TABLES:
        assert f"table-{name}" in dom.ids, name
    assert dom.tables >= len(ALL_TABLES) + N_CLAIMS  # the tables, plus one per claim and the run's own tables
    figures = ALL_FIGURES
    for name in figures:
        assert f"fig-{name}" in dom.ids, name
    assert dom.claims == N_CLAIMS
    assert {"claim-1-technique", "claim-1-singer", "claim-2"} <= dom.ids
    assert len(dom.imgs) == len(figures)  # claim 1's figure is shown once and linked from the second target

    # no broken image: each is an embedded PNG that decodes, and the browser decoded every one
    for src in dom.imgs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG_MAGIC and len(data) > 5000
    assert dom.body_attrs.get("data-images") == str(len(figures))
    assert dom.body_attrs.get("data-broken-images") == "0"
