#!/usr/bin/env bash
# How soon the first upload starts on a large tree: the walk feeds the uploads as it goes
# (it does not list the whole tree first). On FILES empty files (1,000,000 by default) on
# tmpfs, against the emulator on 127.0.0.1, moi-ingest -v logs each confirmed file; the
# time from the start of the process to the first such line bounds when the first upload
# began (it includes the volume check and the first request's answer). The run is stopped
# once that line is seen.
#
#   bash benches/first_upload.sh            # 1,000,000 files, 3 rounds
#   FILES=100000 ROUNDS=1 bash benches/first_upload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FILES:=1000000}" "${ROUNDS:=3}"
cargo build --release --locked -q
BIN=$PWD/target/release/moi-ingest
work=$(mktemp -d -p /dev/shm)
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
python3 benches/empty_tree.py "$work/tree" "$FILES"
"$BIN" emulator --listen 127.0.0.1:0 --data "$work/emu" --api-key bench > "$work/emu.log" 2>&1 &
for _ in $(seq 100); do grep -q 'listening on' "$work/emu.log" && break; sleep 0.1; done
endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/emu.log" | head -1)
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$work/j.sqlite"*
  log=$work/run-$r.log
  start=$(date +%s.%N)
  MOI_KEY=bench MOI_ENDPOINT=$endpoint "$BIN" upload "$work/tree" --volume 1889578498228068352 \
    --journal "$work/j.sqlite" --no-wait -v > /dev/null 2> "$log" &
  pid=$!
  for _ in $(seq 600); do grep -q 'DEBUG uploaded ' "$log" 2>/dev/null && break; sleep 0.01; done
  kill -INT "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  first=$(grep -m1 'DEBUG uploaded ' "$log" | cut -d' ' -f1)
  python3 - "$start" "$first" "$r" <<'PY'
import sys, datetime
start, first, r = float(sys.argv[1]), sys.argv[2], sys.argv[3]
t = datetime.datetime.strptime(first, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
print(f"round {r}: first upload confirmed {t - start:.3f} s after the start")
PY
done
