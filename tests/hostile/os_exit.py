"""Ends the process with status 0 at once, without any cleanup or answer."""

import os


def run():
    os._exit(0)
