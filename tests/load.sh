#!/bin/sh
# Run a command (default: the test suite) while busy loops keep every core loaded, then stop them.
#
#   sh tests/load.sh                       # 2 x nproc busy loops around `python -m pytest -q`
#   LOAD_FACTOR=4 sh tests/load.sh python -m pytest -q tests/test_mpi.py
#
# Each loop is `sh -c 'while :; do :; done'` (a stress-like CPU hog, no extra package), started
# with `nice -n 0` so it competes on equal terms with the tests, and capped by `timeout` so
# that none outlives this script even if it is killed. The loops are stopped by their own pids.
set -u
factor=${LOAD_FACTOR:-2}
cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
count=$((factor * cores))
limit=${LOAD_SECONDS:-7200}
pids=""
stop_load() {
    for pid in $pids; do kill "$pid" 2>/dev/null; done
    pids=""
}
trap stop_load EXIT INT TERM
i=0
while [ "$i" -lt "$count" ]; do
    timeout "$limit" sh -c 'while :; do :; done' &
    pids="$pids $!"
    i=$((i + 1))
done
echo "load.sh: $count busy loops on $cores cores (LOAD_FACTOR=$factor); load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ "$#" -eq 0 ]; then
    set -- python -m pytest -q
fi
"$@"
status=$?
echo "load.sh: load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exit "$status"
