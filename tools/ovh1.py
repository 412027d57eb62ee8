"""One size: plain vs --carbon (child CPU time, AB/BA pairs), median ratio and extra."""
import os, resource, subprocess, sys, statistics
PY = sys.argv[1]; pairs = int(sys.argv[2]); path = sys.argv[3]; extra = sys.argv[4:]
env = dict(os.environ); env.pop("PYTHONDONTWRITEBYTECODE", None)
def run(carbon):
    a = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist", path]
    if carbon: a += ["--carbon", "--carbon-idle=off", *extra]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
p, c = [], []
for i in range(pairs):
    for side in ((False, True) if i % 2 == 0 else (True, False)):
        (c if side else p).append(run(side))
print("plain %.3f carbon %.3f ratio %.3f extra %.0f ms" % (statistics.median(p), statistics.median(c), statistics.median(b / a for a, b in zip(p, c)), statistics.median(b - a for a, b in zip(p, c))*1e3))
