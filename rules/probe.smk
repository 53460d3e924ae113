# Stage: probe. A linear probe per (model, layer, rep) on the cached vectors:
# train on every crop of the train clips, pick the epoch on valid, score the
# test singers. A Linear(dim -> classes) step is too small to gain from a GPU,
# so the probe runs on CPU unless `probe.device: cuda` (then it asks for gpu=1).


rule probe:
    input:
        store=get_rep_store,
        manifest="results/data/manifest.csv",
    output:
        "results/probe/{model}/layer{layer}/{rep}.json",
    params:
        array=get_rep_array,
        classes=config["data"]["techniques"],
        lr=config["probe"]["lr"],
        batch_size=config["probe"]["batch_size"],
        epochs=config["probe"]["epochs"],
        patience=config["probe"]["patience"],
        seeds=config["probe"]["seeds"],
        device=config["probe"]["device"],
    threads: 1
    resources:
        gpu=get_probe_gpu,
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/probe/{model}/layer{layer}/{rep}.log",
    benchmark:
        "results/benchmarks/rules/probe/{model}/layer{layer}/{rep}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/probe.py"
