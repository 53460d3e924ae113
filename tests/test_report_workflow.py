"""End to end: the tiny study's run ends in results/report.html, and Snakemake's own report builds."""

from __future__ import annotations

import zipfile

import pytest
from conftest import run_snakemake


@pytest.mark.workflow
def test_demo_run_writes_report_and_snakemake_report(demo_run):
    html = demo_run / "results/report.html"
    assert html.exists() and html.stat().st_size > 10_000
    page = html.read_text()
    assert page.count('class="claim"') == 4 and "data:image/png;base64," in page
    zip_path = demo_run / "results/report.zip"
    run_snakemake(demo_run, "--report", str(zip_path))
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
    assert any(n.endswith("/report.html") for n in names)
    assert any(n.endswith("/probe_accuracy_vs_sparsity.png") for n in names)
