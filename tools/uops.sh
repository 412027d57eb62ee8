#!/bin/sh
# Instructions per op: tools/uops.sh OP... (valgrind cachegrind, N=2000 minus N=0, / 2000)
cd "$(dirname "$0")/.."
for op in "$@"; do
  a=$(PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null .venv/bin/python tools/ubench.py $op 0 2>&1 | grep "I *refs" | tail -1 | sed 's/.*refs: *//' | tr -dc '0-9')
  b=$(PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null .venv/bin/python tools/ubench.py $op 2000 2>&1 | grep "I *refs" | tail -1 | sed 's/.*refs: *//' | tr -dc '0-9')
  echo "$op $(( (b - a) / 2000 ))"
done
