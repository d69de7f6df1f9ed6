"""Stress harness of the store (issue 17): I/O faults injected at every point of the
store's operations, each followed by the checks a user's data depends on.

It lives beside the scripts (not in the host package) because it patches the
process's I/O functions: nothing of it is imported, or costs anything, in production.
`scripts/stress` runs it; tests/test_stress_short.py runs its short size in CI.
"""
