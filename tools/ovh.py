import os, resource, subprocess, sys, statistics
PY = sys.argv[1]; pairs = int(sys.argv[2]); extra = sys.argv[3:]
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
    for path in ("/tmp/triv2/test_t.py", "/tmp/triv/test_t.py"):
        order = (False, True) if i % 2 == 0 else (True, False)
        for c in order:
            res.setdefault((path, c), []).append(run(path, c))
m = {k: statistics.median(v) for k, v in res.items()}
small, big = "/tmp/triv2/test_t.py", "/tmp/triv/test_t.py"
print("plain 200 %.3f 2000 %.3f | carbon 200 %.3f 2000 %.3f" % (m[(small, False)], m[(big, False)], m[(small, True)], m[(big, True)]))
ratios = [c / p for c, p in zip(res[(big, True)], res[(big, False)])]
print("ratio at 2000 (median of pairs): %.3f" % statistics.median(ratios))
slope = ((m[(big, True)] - m[(small, True)]) - (m[(big, False)] - m[(small, False)])) / 1800 * 1e6
print("extra per test (slope): %.0f us; fixed extra: %.0f ms" % (slope, (m[(small, True)] - m[(small, False)]) * 1e3 - slope * 200 / 1e3))
