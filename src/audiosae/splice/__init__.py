"""Splicing: SAEs put back into their network (docs/splice.md).

- `audiosae.encoders.splice`: the patched forward pass every encoder type has;
- `patches`: what replaces a hidden state (identity, an SAE's reconstruction at frame or
  clip level, the mean-ablation floor, edits of an SAE's codes that keep its error term);
- `data`: the clips a node is spliced on and the output-level probes;
- `measure`: downstream fidelity per metric, with fraction recovered and bootstrap intervals;
- `run`: one node's job; `report`: the report section and its claim.
"""
