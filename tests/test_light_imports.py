"""Jobs that need no torch do not import it: a fresh interpreter per job pays every import again.

`import torch` costs about 2 s (issue 30); a table, figure, attribute, probe, export
or report job that loads it for nothing pays that in every one of its jobs. Each
light glue script's top-level imports (what its job runs before its work) and each
module the report sections load are imported in a fresh interpreter, and torch (or
the other heavy libraries below) must not be in `sys.modules` afterwards. Heavy
libraries belong inside the function that uses them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("torch", "torchaudio", "transformers", "sae_lens", "torchcrepe", "resemblyzer")
# Glue scripts whose jobs compute with numpy, pandas, scikit-learn or matplotlib. Not here, and why: train_sae,
# train_frame_sae, ablation (run SAEs), extract_embeddings, extract_frames (run the encoders), external_latents
# (reads other libraries' SAEs with torch). atlas.py imports torch inside the job only for a frame SAE's traces.
LIGHT_SCRIPTS = ("atlas", "atlas_clips", "atlas_site", "attributes", "disentangle", "download_model",
                 "download_vocalset", "export_sae", "frame_acoustics", "frame_llds", "manifest", "probe", "report",
                 "report_section", "sparse_probe", "stability", "synthesize_corpus")
# Modules the light jobs call into, beyond those the scripts import at the top (report sections load theirs by name).
LIGHT_MODULES = ("audiosae.jobs", "audiosae.layout", "audiosae.config", "audiosae.sae.shape", "audiosae.sae.sizes",
                 "audiosae.controls.sparse_probe", "audiosae.controls.stability", "audiosae.atlas.stats",
                 "audiosae.atlas.truth", "audiosae.atlas.page", "audiosae.atlas.figures")


def script_imports(name: str) -> str:
    """The top-level import statements of workflow_scripts/<name>.py: what its job runs before the work."""
    path = REPO / "workflow_scripts" / f"{name}.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def section_modules() -> list[str]:
    """The modules of every report section's build, draw and claim functions (`module:function`)."""
    from audiosae.report.registry import SECTIONS

    targets = [getattr(s, f, None) for s in SECTIONS for f in ("build", "draw", "claims")]
    return sorted({t.split(":")[0] for t in targets if isinstance(t, str) and ":" in t})


def heavy_after(code: str, env_path=REPO / "src") -> list[str]:
    """The HEAVY modules in sys.modules after a fresh interpreter runs `code`."""
    probe = code + f"\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(env_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"the imports fail:\n{code}\n{proc.stderr[-2000:]}"
    return proc.stdout.split()


def light_items() -> dict[str, str]:
    items = {f"workflow_scripts/{s}.py": script_imports(s) for s in LIGHT_SCRIPTS}
    items.update({m: f"import {m}" for m in (*LIGHT_MODULES, *section_modules())})
    return items


def test_every_light_item_exists():
    for name in LIGHT_SCRIPTS:
        assert (REPO / "workflow_scripts" / f"{name}.py").is_file(), name
    assert "audiosae.report.aggregate" in section_modules()


def test_light_jobs_import_no_torch():
    items = light_items()
    # One interpreter for all first (a second or two); only when it loads something heavy, one per item to name it.
    if not heavy_after("\n".join(items.values())):
        return
    culprits = {name: heavy for name, code in items.items() if (heavy := heavy_after(code))}
    assert not culprits, ("these light jobs' imports load heavy libraries (import them inside the function that "
                          f"needs them): {culprits}")


def test_the_check_catches_torch_imported_on_purpose(tmp_path):
    """A light module that imports torch at the top is named (the check is not blind)."""
    pkg = tmp_path / "lightpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tables.py").write_text("import json\nimport torch  # on purpose\n")
    (pkg / "figures.py").write_text("import json\n\ndef draw():\n    import torch  # inside: fine\n")
    assert heavy_after("import lightpkg.tables", env_path=tmp_path) == ["torch"]
    assert heavy_after("import lightpkg.figures", env_path=tmp_path) == []


@pytest.mark.parametrize("name", ["train_sae", "ablation"])
def test_heavy_scripts_are_left_out_on_purpose(name):
    """The scripts not listed do load torch: the list is the light ones, not all scripts by another name."""
    assert name not in LIGHT_SCRIPTS and "torch" in heavy_after(script_imports(name))
