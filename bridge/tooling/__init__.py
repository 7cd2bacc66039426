"""Laptop tooling: simulation, synthetic steps, benchmarks, evaluation.

A leaf: may import anything below it; nothing in the product imports it.
"""
