# Input functions and params of rules/report.smk (Snakemake keeps functions out of rule files).

def sae_metrics(wildcards=None):
    """metrics.json of every SAE: the clip SAEs of every node, the frame SAEs of every frame node."""
    clip = [(m, l, r) for m, l in nodes() for r in CLIP_REPS]
    frame = [(m, l, r) for m, l in frame_nodes() for r in FRAME_REPS]
    return [f"{layout.sae_dir(m, l, r)}/metrics.json" for m, l, r in clip + frame] + [
        f"{d}/metrics.json" for d in external_dirs()]


def probe_results(wildcards=None):
    return [layout.probe_path(t, m, l, r) for t in TARGETS for m, l, r in node_reps()]


def disentangle_results(wildcards=None):
    return [layout.disentangle_path(m, l, r) for m, l, r in node_reps()]


def disentangle_importances(wildcards=None):
    """The importance matrices (.npz) written beside each disentangle JSON."""
    return [layout.disentangle_path(m, l, r, "npz") for m, l, r in node_reps()]


def report_pages(wildcards=None):
    """Explore pages per section title (e.g. latent atlases), linked from the report."""
    return {s.title: [s.pages.format(model=m, layer=l, rep=r) for m, l, r in node_reps()]
            for s in REPORT_SECTIONS.values() if s.pages}


def report_page_files(wildcards=None):
    return [p for paths in report_pages().values() for p in paths]


def get_config_yaml():
    """The validated config (defaults filled in, other corpora's settings left out) as YAML, for the report."""
    import yaml

    from audiosae.config import study_config

    return yaml.safe_dump(study_config(config), sort_keys=False, default_flow_style=False)


def external_dirs(wildcards=None):
    """The results/ext folder of every sae.external entry (written by rules/interop.smk, read by the report)."""
    return [layout.ext_dir(e["model"], e["layer"], f"ext-{e['name']}") for e in config["sae"]["external"]]
