"""Benchmark of the monthly loads against their practical limits and the course's method (issue 7).

Not a test: ``python -m bench.run`` measures, ``tests/bench`` only checks that it still works.
"""
