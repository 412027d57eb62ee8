"""Raises with a lone surrogate in its message (and prints one): text no UTF-8 writer
accepts. It stopped the HTML and Markdown reports of the whole run."""

import sys


def add(a, b):
    sys.stderr.write("bad \udc80 input\n")
    raise ValueError("bad \udc80 input <b>bold</b> `tick` [link](http://x.invalid)")
