import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

from audiosae.data.manifest import build_manifest, write_csv

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
p = snakemake.params
manifest, skipped = build_manifest(snakemake.input.corpus, list(p.test_singers), list(p.techniques),
                                   p.valid_fraction, p.split_seed, p.on_bad_audio)
write_csv(skipped, snakemake.output.skipped)
write_csv(manifest, snakemake.output.manifest)
