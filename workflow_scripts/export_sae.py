"""Glue for rule export_sae: an SAE folder -> export/ (SAELens disk format and a model card)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.interop.export import export_sae  # noqa: E402
from audiosae.layout import Rep  # noqa: E402
from audiosae.jobs import log_started  # noqa: E402

log_started()  # the log's first line: the seconds this job spent starting

w, p, i = snakemake.wildcards, snakemake.params, snakemake.input
rep = Rep.parse(p.rep)
atlas = getattr(i, "atlas", None)
out = export_sae(Path(i.metrics).parent, snakemake.output[0], model=w.model, layer=int(w.layer),
                 model_spec=dict(p.model_spec), level=rep.level, pooling=p.pooling, corpus=p.corpus, rep=str(rep),
                 probe_paths=list(i.probes), atlas_summary=str(Path(atlas) / "summary.json") if atlas else None,
                 store=i.store, stability=getattr(i, "stability", None))
print(f"export_sae: wrote {out}", file=sys.stderr)
