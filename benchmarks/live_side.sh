#!/usr/bin/env bash
# Live latency side by side: the app of another checkout (BASE, e.g. a `git worktree` of the
# commit before a change) and this one, both running at once, measured in turn with
# benchmarks/live_latency.py, so both sides see the same machine.
#
#   bash benchmarks/live_side.sh BASE FACTOR ROUNDS MODE...
#   e.g.  git worktree add ../base HEAD~1
#         SEGMENTATION_WEIGHTS=../shared/models bash benchmarks/live_side.sh ../base 3.7 2 overlay blur-background
#
# FACTOR: SEGMENTATION_LIVE_SLOW_MODEL for both apps (3.7: Autoseg's cost on a 2-core AVX2 machine,
# 1: as is). Reports go to /tmp/live_SIDE_MODE_ROUND.md; the table rows are printed.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
base="$(cd "$1" && pwd)"; factor=$2; rounds=$3; shift 3
export SEGMENTATION_WARM_EXAMPLES=0 SEGMENTATION_LIVE_SLOW_MODEL=$factor
pids=()
(cd "$base" && GRADIO_SERVER_PORT=7871 exec python app.py >/tmp/live_side_base.log 2>&1) & pids+=($!)
(cd "$here" && GRADIO_SERVER_PORT=7872 exec python app.py >/tmp/live_side_main.log 2>&1) & pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for port in 7871 7872; do
  for _ in $(seq 90); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 2; done
done
for r in $(seq "$rounds"); do for mode in "$@"; do for side in base:7871 main:7872; do
  name=${side%%:*}
  echo "== round $r, $mode, $name, load $(cut -d' ' -f1 /proc/loadavg)"
  python "$here/benchmarks/live_latency.py" --url "http://127.0.0.1:${side##*:}/" --mode "$mode" \
    --seconds 20 --output "/tmp/live_${name}_${mode}_$r.md" | grep -E '^\| [0-9]|^Status'
done; done; done
