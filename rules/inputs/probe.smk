# Input functions and params of rules/probe.smk (Snakemake keeps functions out of rule files).

def get_target_splits():
    """{target: how it is split}, in probe.targets order: the corpus split, or a seeded random split (with what
    shapes it)."""
    data = config["data"]
    random = {"strategy": "random", **{k: data[k] for k in ("valid_fraction", "test_fraction", "split_seed")}}
    return {t["label"]: {"strategy": "corpus"} if t["split"] == "corpus" else random
            for t in config["probe"]["targets"]}
