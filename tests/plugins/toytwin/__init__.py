"""A toy kind of twin, registered only by the test that uses it (tests/test_plugin.py)."""
