"""Instructions per operation of the per-test path (run under valgrind: see irefs)."""
import os, sys, time, threading
op = sys.argv[1]; n = int(sys.argv[2])
from pytest_carbon.measure.meter import Meter
from pytest_carbon.measure.sensors.estimate import EstimateSensor
from pytest_carbon.measure.idle import IdleEstimate
from pytest_carbon.carbon.accounting import resolve_accounting
from pytest_carbon.measure import proctime
import pytest_carbon.runner  # noqa
from pytest_carbon.results.record import window_record, iso_utc
from pytest_carbon.measure.sensors.base import weakest_method
from pytest_carbon.report.totals import compute
from pytest_carbon.report.terminal import table_lines, _layout, legend_line, caveat_lines, outcomes_line
from pytest_carbon.results.caveats import aggregate, trust_note
s = EstimateSensor(); m = Meter([s]); m.idle = IdleEstimate({"cpu": 1.0, "dram": 0.5}, method="given")
acc = resolve_accounting()
m.begin("k"); closed = m.end_raw("k")
def rec():
    inputs, ch, w = m.charge_of(closed); win = closed[0]
    return window_record("t.py::test_1", win.unix0, inputs, ch, w, win.samples, acc, attribution=m.attribution, sensors=m.sensor_names, worker=None, outcome="passed", attempts=1)
recs = [dict(rec(), nodeid=f"t.py::test_{i}") for i in range(n)] if op in ("totals", "table", "summary") else []
ops = {
    "read": lambda: s.read(()),
    "rss": lambda: proctime._rss_proc(()),
    "cpu": lambda: proctime._tree_cpu_proc(()),
    "beginend": lambda: (m.begin("k"), m.end_raw("k")),
    "charge_of": lambda: m.charge_of(closed),
    "record": rec,
    "noop": lambda: None,
    "iso": lambda: iso_utc(1764000000.25),
    "weakest": lambda: weakest_method(("estimated", "estimated")),
    "recfields": lambda: acc.record_fields(0.1, 0.2, share=1.0),
    "gco2e": lambda: acc.gco2e_g(0.1),
    "sum2": lambda: sum(D.values()),
    "reading": lambda: Reading(1.0, D, NO_POWER, 2.0),
    "lock": lambda: L.__enter__() and L.__exit__(None, None, None),
    "getpid": os.getpid,
    "time": time.time,
    "inputs": lambda: m._inputs(*closed[:5]),
    "charge": lambda: charge(INP, m.idle, cpus=2, attribution="auto", sharers=1),
    "wr": lambda: window_record("t.py::test_1", 1.0, INP, CH, [], (), acc, attribution="auto", sensors=("estimate",), worker=None, outcome="passed", attempts=1),
}
import os, time, threading
from pytest_carbon.measure.sensors.base import Reading, NO_POWER
from pytest_carbon.measure.meter import charge
D = {"cpu": 1.0}; L = threading.Lock()
INP, _w = m._inputs(*closed[:5]); CH = charge(INP, m.idle, cpus=2)
if op in ops:
    f = ops[op]
    for _ in range(n): f()
elif op == "totals":
    compute(recs)
elif op == "table":
    t = compute(recs); table_lines(recs, 100, 20, t, False)
elif op == "summary":
    t = compute(recs); lay = _layout(recs, t, 100, False); table_lines(recs, 100, 20, t, False, lay); legend_line(recs, 100, t, False, lay); aggregate(recs); trust_note(r["method"] for r in recs if r.get("method")); outcomes_line(recs, None)
