"""Shared core of the benchmark: asset manager, media I/O, clip format and the Method interface."""
