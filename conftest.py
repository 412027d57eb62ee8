"""Root conftest: the test suite drives pytest itself through ``pytester``."""

pytest_plugins = ["pytester"]
