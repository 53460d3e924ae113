import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.data.download import fetch_and_extract
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting

p = snakemake.params
fetch_and_extract(p.url, p.archive, snakemake.output[0], md5=p.md5, size=p.size)
