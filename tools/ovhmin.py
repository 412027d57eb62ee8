"""plain vs --carbon on given suites: child CPU time, AB/BA pairs; min and median per side.

On a shared machine the minimum of many runs is the steadier figure (a neighbour only
adds to a run's CPU time: cache misses, a shared core), the median of pair ratios the
one the targets are stated in. Usage: ovhmin.py PYTHON PAIRS SUITE... [-- EXTRA ARGS]
"""
import os, resource, subprocess, sys, statistics
PY = sys.argv[1]; pairs = int(sys.argv[2]); rest = sys.argv[3:]
extra = rest[rest.index("--") + 1:] if "--" in rest else []
suites = rest[: rest.index("--")] if "--" in rest else rest
env = dict(os.environ); env.pop("PYTHONDONTWRITEBYTECODE", None)
def run(path, carbon):
    a = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", path]
    if carbon: a += ["--carbon", "--carbon-idle=off", *extra]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
res = {}
for i in range(pairs):
    for path in suites:
        for c in ((False, True) if i % 2 == 0 else (True, False)):
            res.setdefault((path, c), []).append(run(path, c))
for path in suites:
    p, c = res[(path, False)], res[(path, True)]
    print("%s: plain min %.3f med %.3f | carbon min %.3f med %.3f | ratio of mins %.3f, median of pair ratios %.3f | extra min-min %.0f ms" % (
        path, min(p), statistics.median(p), min(c), statistics.median(c), min(c) / min(p),
        statistics.median(b / a for a, b in zip(p, c)), (min(c) - min(p)) * 1e3))
if len(suites) == 2:
    (s, ns), (b, nb) = [(x, int(open(x).read().count("def test_"))) for x in suites]
    slope = ((min(res[(b, True)]) - min(res[(s, True)])) - (min(res[(b, False)]) - min(res[(s, False)]))) / (nb - ns) * 1e6
    fixed = (min(res[(s, True)]) - min(res[(s, False)])) * 1e3 - slope * ns / 1e3
    print("slope (mins) %.0f us/test, fixed %.0f ms" % (slope, fixed))
