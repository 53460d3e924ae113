"""End to end: the tiny study's run ends in results/report.html, and Snakemake's own report builds."""

from __future__ import annotations

import zipfile

import pandas as pd

import pytest
from conftest import run_snakemake


@pytest.mark.workflow
def test_demo_run_writes_report_and_snakemake_report(demo_run):
    html = demo_run / "results/report.html"
    assert html.exists() and html.stat().st_size > 10_000
    page = html.read_text()
    # the paper's claims with claim 1 per probe target (tests/tiny.yaml: technique, singer), the atlas's, the
    # splice's (claim 9) and the causal atlas's two (claims 10 and 11)
    assert page.count('class="claim"') == 9 and "data:image/png;base64," in page
    assert 'id="claim-10"' in page and 'id="claim-11"' in page
    assert 'id="claim-1-technique"' in page and 'id="claim-1-singer"' in page
    zip_path = demo_run / "results/report.zip"
    run_snakemake(demo_run, "--report", str(zip_path))
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
    assert any(n.endswith("/report.html") for n in names)
    assert any(n.endswith("/probe_accuracy_vs_sparsity.png") for n in names)
    # the atlas goes in as one folder: its landing page, every page, and every clip's audio once, as the
    # files its links point to
    pages = [n for n in names if n.endswith("/index.html")]
    assert len(pages) == 1 + 3 * 3  # the landing page, and the tiny study's nodes x reps
    clips = len(pd.read_csv(demo_run / "results/data/manifest.csv"))
    with zipfile.ZipFile(zip_path) as z:
        ogg = [i for i in z.infolist() if i.filename.endswith(".ogg")]
        assert len(ogg) == clips and all(i.file_size > 1000 for i in ogg)
        assert all(z.read(i)[:4] == b"OggS" for i in ogg[:20])
