"""Glue for rule export_sae: an SAE folder -> export/ (SAELens disk format and a model card)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.interop.export import export_sae  # noqa: E402

w = snakemake.wildcards
atlas = getattr(snakemake.input, "atlas", None)
out = export_sae(Path(snakemake.input.metrics).parent, snakemake.output[0], model=w.model, layer=int(w.layer),
                 model_spec=dict(snakemake.params.model_spec), level="frame" if w.kind == "fsae" else "clip",
                 pooling=snakemake.params.pooling, corpus=snakemake.params.corpus, rep=f"{w.kind}{w.sparsity}",
                 probe_paths=list(snakemake.input.probes),
                 atlas_summary=str(Path(atlas) / "summary.json") if atlas else None)
print(f"export_sae: wrote {out}", file=sys.stderr)
