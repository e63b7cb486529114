"""Benchmarks: accuracy and speed side by side with a baseline measured in the same run.

`make bench` (= `python -m benchmarks`) runs every `bench_*.py` module's `run()` and prints
its markdown table. `python -m benchmarks io` runs only `bench_io.py`.
"""
