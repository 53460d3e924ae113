# Stage: disentangle. Per (model, layer, rep): Lasso of every eGeMAPS attribute
# (and, on the synthetic corpus, every true factor) on the test clips' vectors;
# R², importance matrix, the paper's and standard DCI scores.


rule disentangle:
    input:
        store=get_rep_store,
        attributes=layout.ATTRIBUTES,
        manifest=layout.MANIFEST,
    output:
        json=f"{layout.DISENTANGLE}.json",
        npz=f"{layout.DISENTANGLE}.npz",
    params:
        array=get_rep_array,
        alpha=config["disentangle"]["alpha"],
        max_iter=config["disentangle"]["max_iter"],
        top_n=config["disentangle"]["top_n"],
        cv_folds=config["disentangle"]["cv_folds"],
        eps=config["disentangle"]["eps"],
        seed=config["disentangle"]["seed"],
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/disentangle/{model}/layer{layer}/{rep}.log",
    benchmark:
        "results/benchmarks/rules/disentangle/{model}/layer{layer}/{rep}.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/disentangle.py"
