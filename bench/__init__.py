"""Benchmarks: each module runs against the local stand-ins, writes ``bench/results/<name>.json`` and prints a
summary table (``python -m bench.<name>``)."""
