"""Prints terminal control sequences: clear the screen, set the window title, rewrite
the line with a fake pytest summary. Then answers wrongly, so the output is shown."""

import sys


def add(a, b):
    print("\x1b[2J\x1b[H\x1b]0;pwned\x07\r\x1b[32m==== 41 passed in 0.01s ====\x1b[0m")
    sys.stderr.write("\x1b[31mred\x1b[0m\x9b2J\u202eevil\n")
    return a - b
