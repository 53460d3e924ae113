import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging
from pathlib import Path

import pandas as pd

from audiosae.attributes import compute_attributes, write_parquet
from audiosae.data.manifest import read_manifest
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
synthetic = snakemake.input.synthetic  # the synthetic corpus's folder, or nothing on other corpora
corpus = Path(synthetic) if isinstance(synthetic, str) and synthetic else None
factors = pd.read_csv(corpus / "factors.csv") if corpus is not None else None
table = compute_attributes(read_manifest(snakemake.input.manifest), snakemake.params.crop_seconds,
                           snakemake.params.attributes_on, factors=factors, corpus_root=corpus,
                           workers=snakemake.threads)
write_parquet(table, snakemake.output[0])
