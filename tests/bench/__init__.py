"""Postwire benchmark: raw RabbitMQ/SecantusDB limits of this box, then the whole system under load.

Run with ``make bench`` or ``.venv/bin/python -m tests.bench [--quick]``. Not a test: nothing asserts
on timings; it prints a table and writes JSON to ``tests/bench/results/``.
"""
