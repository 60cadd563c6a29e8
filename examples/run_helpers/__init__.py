"""Helpers shipped with ``%%tfjob run --files run_helpers`` (examples/03-run-a-cell.ipynb)."""
