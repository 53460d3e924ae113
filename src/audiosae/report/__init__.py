"""The report stage: tables from every stage's JSON, figures, claims, one HTML page.

- ``aggregate``: long-format tables (one row per model, layer and representation);
- ``figures``: seaborn figures (PNG and PDF) with one-line captions;
- ``claims``: the four claims of the paper, answered from the tables;
- ``html``: ``results/report.html``, a self-contained page.
"""

# Names of the stage's outputs, light enough for the Snakefile to import.
TABLES = ("reconstruction", "probe", "confusion", "disentanglement", "attributes", "factors", "categories")
FIGURES = (
    "probe_accuracy_vs_sparsity",
    "fvu_vs_sparsity",
    "r2_vs_sparsity",
    "completeness_vs_sparsity",
    "category_counts",
    "confusion_best_node",
    "completeness_vs_effective_codes",
)
SYNTHETIC_FIGURES = ("factor_importance",)  # needs the synthetic corpus's true factors
