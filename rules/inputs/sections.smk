# The report sections' outputs, from audiosae.report.registry: each stage's rule (aggregate, figures,
# atlas_report, frame_report, controls_report) writes the tables, figures and captions its section registers, and
# the report rule reads them all. Included by rules/common.smk, before the stages' rule files.


from snakemake.io import report as for_report  # Snakemake's report() flag; the bare name starts a directive here

from audiosae.report import registry as report_registry

REPORT_FLAGS = report_registry.flags(config)
REPORT_SECTIONS = {s.name: s for s in report_registry.sections(REPORT_FLAGS)}


def _sections(section):
    return REPORT_SECTIONS.values() if section is None else [REPORT_SECTIONS[section]]


def section_tables(section, ext):
    """results/tables/<name>.<ext> of one report section (all sections with section=None)."""
    return [layout.table_path(t, ext) for s in _sections(section) for t in s.tables]


def section_figures(section, ext):
    return [layout.figure_path(f, ext) for s in _sections(section) for f in s.figure_names(REPORT_FLAGS)]


def section_captions(section=None):
    """Each section's figure captions file (sections without figures have none)."""
    return [layout.captions_path(s.name) for s in _sections(section) if s.figure_names(REPORT_FLAGS)]


def section_table_outputs(section):
    """A section's CSV tables, flagged for `snakemake --report` (captions in report/tables/, relative to rules/)."""
    return [for_report(p, caption=f"../report/tables/{Path(p).stem}.rst", category="Tables",
                       labels={"table": Path(p).stem}) for p in section_tables(section, "csv")]


def section_figure_outputs(section):
    """A section's PNG figures, flagged for `snakemake --report` (captions in report/figures/, relative to rules/)."""
    return [for_report(p, caption=f"../report/figures/{Path(p).stem}.rst", category="Figures",
                       subcategory=report_registry.figure_subcategory(Path(p).stem), labels={"figure": Path(p).stem})
            for p in section_figures(section, "png")]
