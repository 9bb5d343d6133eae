"""Evaluation: metrics, the runner, scoring of existing outputs, and the asset commands."""
