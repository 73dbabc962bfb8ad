"""Mutation tooling run by `just mutants`: the guard harness and the sampled CI step.

Not collected by pytest (no ``test_`` files); each module runs as ``python -m``.
"""
