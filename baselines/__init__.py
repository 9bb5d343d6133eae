"""Warping baselines (FOMM, TPSMM, face-vid2vid) behind the benchmark's Method interface."""
