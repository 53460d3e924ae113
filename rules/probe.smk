# Stage: probe. A linear probe per (target, model, layer, rep) on the cached vectors:
# train on every cached item of the train clips, pick the epoch on valid, score the
# test clips, with a bootstrap interval over them. A target is a label column of
# the manifest with its split strategy (probe.targets). A Linear(dim -> classes)
# step is too small to gain from a GPU: probes train on the CPU, in numpy.


rule probe:
    input:
        store=get_rep_store,
        manifest="results/data/manifest.csv",
    output:
        json="results/probe/{target}/{model}/layer{layer}/{rep}.json",
        npz="results/probe/{target}/{model}/layer{layer}/{rep}.npz",
    params:
        array=get_rep_array,
        split=get_target_split,
        lr=config["probe"]["lr"],
        batch_size=config["probe"]["batch_size"],
        epochs=config["probe"]["epochs"],
        patience=config["probe"]["patience"],
        seeds=config["probe"]["seeds"],
        bootstrap=config["probe"]["bootstrap"],
        ci=config["probe"]["ci"],
        bootstrap_seed=config["probe"]["bootstrap_seed"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/probe/{target}/{model}/layer{layer}/{rep}.log",
    benchmark:
        "results/benchmarks/rules/probe/{target}/{model}/layer{layer}/{rep}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/probe.py"
