"""Node scores: where in a pool a shape with shares, CPU or memory goes (one plugin a file)."""
