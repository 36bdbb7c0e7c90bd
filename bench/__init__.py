"""Benchmarks of the product on loopback (sandbox and Slack stand-in).

`python bench/run_all.py` runs them all and prints one table; see bench/README.md.
"""
