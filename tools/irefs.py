"""Instructions executed (valgrind cachegrind, user space) by plain pytest and --carbon.

Deterministic where CPU time is not (a shared machine): PYTHONHASHSEED=0, bytecode
cached. Kernel time (system calls) is not counted. Usage: irefs.py PYTHON SUITE... [-- ARGS]
"""
import os, re, subprocess, sys
PY = sys.argv[1]; rest = sys.argv[2:]
extra = rest[rest.index("--") + 1:] if "--" in rest else []
suites = rest[: rest.index("--")] if "--" in rest else rest
PRE = os.environ.get("IREFS_PRE", "").split()
env = dict(os.environ, PYTHONHASHSEED="0"); env.pop("PYTHONDONTWRITEBYTECODE", None)
def irefs(path, carbon):
    a = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", *PRE, path]
    if carbon: a += ["--carbon", "--carbon-idle=off", *extra]
    r = subprocess.run(a, env=env, capture_output=True, text=True)
    pid = re.search(r"==(\d+)== Command:", r.stderr).group(1)
    m = re.search(r"==%s== I\s+refs:\s+([\d,]+)" % pid, r.stderr)
    return int(m.group(1).replace(",", ""))
out = {}
for path in suites:  # warm-up: bytecode caches written before anything is counted
    for carbon in (False, True):
        a = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", *PRE, path]
        subprocess.run(a + (["--carbon", "--carbon-idle=off", *extra] if carbon else []), env=env, capture_output=True)
for path in suites:
    n = open(path).read().count("def test_")
    p, c = irefs(path, False), irefs(path, True)
    out[n] = (p, c)
    print("%d tests: plain %.1f M, carbon %.1f M instructions, ratio %.3f, extra %.1f M" % (n, p / 1e6, c / 1e6, c / p, (c - p) / 1e6))
if len(out) == 2:
    (ns, (ps, cs)), (nb, (pb, cb)) = sorted(out.items())
    slope = ((cb - pb) - (cs - ps)) / (nb - ns)
    print("slope %.0f instructions/test; fixed %.1f M; plain per test %.0f" % (slope, ((cs - ps) - slope * ns) / 1e6, (pb - ps) / (nb - ns)))
