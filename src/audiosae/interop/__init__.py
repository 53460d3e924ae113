"""SAEs that travel: export ours in SAELens's disk format, import SAEs trained with other libraries.

- :mod:`audiosae.interop.export`: an SAE folder of ours -> ``export/`` (SAELens
  ``cfg.json`` + ``sae_weights.safetensors`` with our input normalisation and
  pre-bias folded in, and a model card ``README.md``).
- :mod:`audiosae.interop.readers`: SAELens, sparsify and dictionary_learning
  folders -> an :class:`~audiosae.interop.readers.ExternalSAE` that encodes our
  stored vectors exactly as its library would.
- :mod:`audiosae.interop.latents`: an external SAE's ``latents.zarr`` and
  ``metrics.json`` in the layout our own SAEs write (rep ``ext-<name>``).
"""
