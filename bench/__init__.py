"""Benchmarks: backend_v1 against the hardware limit, the original kit and LitServe.

`make bench` (or `python -m bench`) runs everything and writes bench/results/.
Every figure is compared with contenders measured one after another in the same
run, because this shared machine's absolute speed moves from run to run.
"""
