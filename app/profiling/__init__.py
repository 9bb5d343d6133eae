"""Profilers: scripts that print where time and memory go (``nox -s bench``); never gates."""
