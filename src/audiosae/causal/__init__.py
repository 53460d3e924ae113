"""The causal atlas (docs/atlas.md, "Is a label causal?"): erase a concept, steer a latent.

Every intervention edits an SAE's codes inside the network (`audiosae.splice.patches.edit`)
and keeps the SAE's error term, so an empty edit is the clean network exactly.

- `passes`: the test clips run up to the patched layer once (`Passes`), then once more
  per intervention from that layer on; what each pass reads out (the pooled last hidden
  state, CREPE's pitch);
- `erasure`: concept erasure curves (top-ranked latents against random ones);
- `steering`: each labelled card's latent added at a few multiples of its activation,
  against random directions of the same norm, and the card's badge;
- `run`: one node's job; `report`: the report section (tables, figure, two claims).
"""
