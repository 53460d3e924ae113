import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

from audiosae.data.synthetic import synthesize_corpus
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
p = snakemake.params
synthesize_corpus(snakemake.output[0], singers=list(p.singers), clips_per_technique=p.clips_per_technique,
                  duration_s=tuple(p.duration_s), seed=p.seed, techniques=list(p.techniques))
