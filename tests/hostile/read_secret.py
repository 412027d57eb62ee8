"""Looks for OPENAI_API_KEY in its environment, its parent's and every process's it can
read, and prints whatever it finds. Returns the number of places it found the key in."""

import os


def run():
    found = 0
    print(dict(os.environ))
    if "OPENAI_API_KEY" in os.environ:
        found += 1
    for pid in {str(os.getppid()), *[p for p in os.listdir("/proc") if p.isdigit()]}:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        print(pid, env.decode(errors="replace"))
        if b"OPENAI_API_KEY" in env:
            found += 1
    return found
