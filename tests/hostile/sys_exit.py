"""Exits the interpreter with status 0 instead of answering."""

import sys


def run():
    sys.exit(0)
