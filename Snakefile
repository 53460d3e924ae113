# audiosae: explain audio foundation models with sparse autoencoders.
#
#   snakemake --cores all --resources gpu=2          # the paper's study (config.yaml)
#   snakemake --profile profiles/demo                # the offline demo
#
# A config given with --configfile replaces config.yaml rather than merging with
# it, so the demo does not inherit the paper's models.

import sys

from snakemake.utils import min_version

min_version("9.0")

if not workflow.configfiles and not config:
    configfile: "config.yaml"


from audiosae.config import ConfigError, validate as validate_config

try:
    validate_config(config)
except ConfigError as err:
    sys.stderr.write(f"audiosae: bad configuration: {err}\n")
    sys.exit(1)

# A user's table or folder tree is checked now (columns, files, labels, splits, probe
# targets), so a bad row stops the run with one line before any job starts; so is every
# limit its test split sets to the config (audiosae.limits: folds, bootstrap, classes).
if config["data"]["corpus"] in ("table", "folders"):
    from audiosae.data.corpus import check_corpus, corpus_params
    from audiosae.data.manifest import ManifestError
    from audiosae.limits import LimitError, check_corpus_limits

    try:
        check_corpus_limits(check_corpus(corpus_params(config["data"]), config["probe"]["targets"]), config)
    except ManifestError as err:
        sys.stderr.write(f"audiosae: bad corpus: {err}\n")
        sys.exit(1)
    except LimitError as err:
        sys.stderr.write(f"audiosae: bad configuration for this corpus: {err}\n")
        sys.exit(1)


include: "rules/common.smk"


wildcard_constraints:
    model="|".join(MODELS),
    layer=r"\d+",
    sparsity=layout.SPARSITY_PATTERN,
    rep=layout.REP_PATTERN,
    seed=r"\d+",

include: "rules/data.smk"
include: "rules/embeddings.smk"
include: "rules/sae.smk"
include: "rules/frames.smk"
include: "rules/probe.smk"
include: "rules/disentangle.smk"
include: "rules/atlas.smk"
include: "rules/causal.smk"
include: "rules/report.smk"
include: "rules/interop.smk"
include: "rules/controls.smk"
include: "rules/splice.smk"


rule all:
    input:
        layout.REPORT_HTML,
        layout.ATLAS_SITE,  # the atlas pages in one folder, for `snakemake --report`
        sae_exports,  # every trained SAE in SAELens's format with a model card (rules/interop.smk)
    default_target: True
