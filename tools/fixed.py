"""Fixed cost of --carbon: one trivial test, plain vs --carbon, child CPU time, medians."""
import os, resource, subprocess, sys, statistics
PY = sys.argv[1]; n = int(sys.argv[2]); path = sys.argv[3] if len(sys.argv) > 3 else "/tmp/triv1/test_t.py"
env = dict(os.environ); env.pop("PYTHONDONTWRITEBYTECODE", None)
def run(carbon):
    a = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", path]
    if carbon: a += ["--carbon", "--carbon-idle=off"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
p, c = [], []
for i in range(n):
    for side in ((False, True) if i % 2 == 0 else (True, False)):
        (c if side else p).append(run(side))
print("plain %.1f ms  carbon %.1f ms  extra (median of pairs) %.1f ms" % (statistics.median(p)*1e3, statistics.median(c)*1e3, statistics.median(b - a for a, b in zip(p, c))*1e3))
