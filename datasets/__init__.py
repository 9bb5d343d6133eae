"""Prepared datasets: VoxCeleb1/2, TalkingHead-1KH and the embedded sample set, one format."""
