"""The report stage: tables from every stage's JSON, figures, claims, one HTML page.

- ``aggregate``: long-format tables (one row per model, layer and representation);
- ``figures``: seaborn figures (PNG and PDF) with one-line captions;
- ``claims``: the four claims of the paper, answered from the tables;
- ``html``: ``results/report.html``, a self-contained page.
"""
