"""`snakemake --lint` has no complaint about any rule."""

from __future__ import annotations

import subprocess

from conftest import REPO, SNAKEMAKE


def test_snakemake_lint_is_clean(tmp_path):
    proc = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--lint",
         "--configfile", str(REPO / "profiles/demo/demo.yaml")],
        capture_output=True, text=True,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Lints for rule" not in out and "Lints for snakefile" not in out, out
