# Input functions and params of rules/data.smk (Snakemake keeps functions out of rule files).

def get_corpus_params():
    """Every data.* setting that changes the manifest (corpus kind, its settings, split fractions and seed)."""
    from audiosae.data.corpus import corpus_params

    return corpus_params(config["data"])


def get_synthetic_corpus():
    """The synthetic corpus's folder (its true factors and f0 tracks join the attributes), else nothing."""
    return "resources/synthetic" if SYNTHETIC else []
