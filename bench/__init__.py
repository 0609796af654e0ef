"""Benchmarks of the bridge against its limits (see BENCHMARKS.md). Run from the repository root:
``python -m bench.<name>``. Every figure is a ratio of two measurements taken side by side in one run."""
