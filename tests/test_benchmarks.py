"""Every script in benchmarks/ runs end to end at a toy size (its --tiny option).

The benchmarks call the package's public functions; an interface change that
breaks one should break this test, not a benchmark nobody runs. Numbers are not
asserted (speed lives in the benchmarks); the written results must be complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"

# script -> (extra arguments, result file under --out, keys the result must hold)
CASES = {
    "atlas": ([], "atlas.json", ["job_s", "statistics_s", "live_units"]),
    "disentangle": ([], "disentangle.json", []),
    "extract": (None, "extract.json", ["results"]),
    "sae_train": ([], "sae_train.json", ["ours_wall_s", "paper_wall_s", "sae_train_samples_per_s"]),
    "stability": ([], "stability.json", ["rows", "candidates", "seeds"]),
    "frames": ([], "frames.json", ["train_N", "train_4N", "peak_rss_ratio_4N_over_N", "store"]),
    "sae_step": (["--compile"], "sae_step.json", ["project_frames_per_s", "reference_dense_frames_per_s",
                                      "reference_sparse_frames_per_s", "ratio_project_over_sparse"]),
}


def test_every_benchmark_is_covered():
    assert sorted(p.stem for p in BENCH.glob("*.py")) == sorted(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_tiny(name, tmp_path):
    extra, result, keys = CASES[name]
    out = tmp_path / "out"
    # extract.py takes the JSON path, the others a folder
    target = ["--out", str(out / result)] if extra is None else ["--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--tiny", *target], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / result).read_text())
    for key in keys:
        assert key in doc, f"{result} lacks {key!r}"
    assert (out / result).with_suffix(".md").exists()
