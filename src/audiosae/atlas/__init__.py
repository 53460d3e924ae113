"""The latent atlas: what every unit of a representation encodes, with numbers and audio.

- ``stats``: vectorised unit statistics (firing, AUROC per class, Spearman ρ per attribute,
  top and median clips, histograms, labels);
- ``clips``: each clip's crop-0 audio (Ogg Vorbis) and spectrogram, written once;
- ``page``: the page of one representation (JSON blob + a small renderer);
- ``build``: one atlas job (store -> units.csv, summary.json, index.html);
- ``truth``: ground truth on the synthetic corpus (Hungarian-matched MCC, ridge read-out R²);
- ``ablation``: zeroing a class's latents and reading the probe on the reconstructions;
- ``report``, ``figures``: the stage's tables, figures and claim.

The stage's tables, figures, claim and pages are registered in ``audiosae.report.registry`` (ATLAS).
"""

