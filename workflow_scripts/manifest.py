import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

from audiosae.data.corpus import build_corpus_manifest
from audiosae.data.manifest import write_csv
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
p = snakemake.params
root = snakemake.input.corpus if p.corpus["corpus"] in ("vocalset", "synthetic") else None
manifest, skipped = build_corpus_manifest(dict(p.corpus), root, p.on_bad_audio)
write_csv(skipped, snakemake.output.skipped)
write_csv(manifest, snakemake.output.manifest)
