"""The pure core: no I/O, no async, no framework imports (tests/test_architecture.py checks)."""
