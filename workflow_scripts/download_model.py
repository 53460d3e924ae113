import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.encoders.download import download_model
from audiosae.jobs import log_started

log_started()  # the log's first line: the seconds this job spent starting

record = download_model(snakemake.params.repo_id, snakemake.params.revision, snakemake.output[0])
print(f"{record['id']} at {record['revision_requested']} = commit {record['commit']} -> {snakemake.output[0]}",
      file=sys.stderr)
