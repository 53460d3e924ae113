"""Controls: random-weights twins, SAE seed stability, k-sparse probing."""
