"""The report stage: tables from every stage's JSON, figures, claims, one HTML page.

- ``registry``: what each analysis stage contributes (tables, figures, claims, pages);
- ``aggregate``: the paper's long-format tables (one row per model, layer and representation);
- ``figures``: the paper's seaborn figures (PNG and PDF) with one-line captions;
- ``claims``: the claims, answered from the tables;
- ``html``: ``results/report.html``, a self-contained page.
"""

from audiosae.report.registry import CORE

# The core section's outputs, light enough for the Snakefile to import.
TABLES = tuple(CORE.tables)
SYNTHETIC_FIGURES = tuple(f for f in CORE.figures if "synthetic" in CORE.figure_requires.get(f, ()))
FIGURES = tuple(f for f in CORE.figures if f not in SYNTHETIC_FIGURES)
