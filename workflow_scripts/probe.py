import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from audiosae.devices import gpu_slot, resolve_device
from audiosae.jsonio import write_json
from audiosae.probe import load_probe_data, run_probe


def log(msg):
    print(msg, file=sys.stderr)


p = snakemake.params
data = load_probe_data(snakemake.input.store, p.array, snakemake.input.manifest, list(p.classes))
log(f"{snakemake.input.store} [{p.array}]: " + ", ".join(f"{s} {len(v)}" for s, v in data.y.items())
    + f" items, dim {data.x['train'].shape[1]}")
gpus = snakemake.resources.get("gpu", 0)
with gpu_slot(gpus) as slot:
    # Without a GPU slot the probe stays on CPU even under device: auto (see rules/probe.smk).
    device = resolve_device(p.device) if slot is not None else resolve_device("cpu")
    log(f"device {device}")
    doc = run_probe(data, seeds=p.seeds, lr=p.lr, batch_size=p.batch_size, epochs=p.epochs, patience=p.patience,
                    device=device, threads=snakemake.threads, model=snakemake.wildcards.model,
                    layer=int(snakemake.wildcards.layer), rep=snakemake.wildcards.rep, log=log)
write_json(snakemake.output[0], doc)
