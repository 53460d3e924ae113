# Input functions and params of rules/probe.smk (Snakemake keeps functions out of rule files).

def get_target_splits():
    """{target: how it is split}, in probe.targets order: the corpus split, or a seeded random split (with what
    shapes it)."""
    data = config["data"]
    random = {"strategy": "random", **{k: data[k] for k in ("valid_fraction", "test_fraction", "split_seed")}}
    return {t["label"]: {"strategy": "corpus"} if t["split"] == "corpus" else random
            for t in config["probe"]["targets"]}


def probe_standardize():
    """probe.standardize, or (null) on exactly when the study has random-weights twins: then a probe's read-out
    must not depend on a layer's activation scale, which the twin's differs in."""
    value = config["probe"]["standardize"]
    return TWINS if value is None else bool(value)
