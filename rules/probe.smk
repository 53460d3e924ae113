# Stage: probe. Linear probes per (model, layer, rep) on the cached vectors, one per
# probe target (probe.targets: a label column of the manifest with its split
# strategy), each in results/probe/{target}/...: train on every cached item of the
# train clips, pick the epoch on valid, score the test clips, with a bootstrap
# interval over them. One job probes every target: it reads the store once, and a
# probe (one small matrix, trained in numpy on the CPU) costs less than a job.

include: "inputs/probe.smk"


rule probe:
    input:
        store=get_rep_store,
        manifest=layout.MANIFEST,
    output:
        json=[layout.PROBE.replace("{target}", t) + ".json" for t in TARGETS],
        npz=[layout.PROBE.replace("{target}", t) + ".npz" for t in TARGETS],
    params:
        array=get_rep_array,
        targets=get_target_splits(),  # {target: split}, in the order of the json and npz outputs
        lr=config["probe"]["lr"],
        batch_size=config["probe"]["batch_size"],
        epochs=config["probe"]["epochs"],
        patience=config["probe"]["patience"],
        seeds=config["probe"]["seeds"],
        standardize=probe_standardize(),
        bootstrap=config["probe"]["bootstrap"],
        ci=config["probe"]["ci"],
        bootstrap_seed=config["probe"]["bootstrap_seed"],
    threads: 1
    resources:
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
