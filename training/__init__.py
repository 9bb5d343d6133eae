"""Training: the loop every trainable method uses, training configs, the perceptual loss."""
