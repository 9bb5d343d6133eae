"""Shared face geometry: detection, landmarks, identity embeddings, 3DMM fitting, SECC rendering."""
