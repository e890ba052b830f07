#!/usr/bin/env bash
# What a folder rename costs the night after, with and without `--delete`.
#
#   bash benches/rename.sh                 # 1,000 files of 64 KiB, 3 rounds
#   FILES=200 SIZE_KB=16 bash benches/rename.sh
#
# Each round: a first night uploads reports/ (FILES files), the folder is renamed to
# reports-2026/, and the next night runs once with --delete (the rename is one
# /catalog/folder/update) and once, on a fresh emulator, without it (every file is sent
# again at its new path and the old copies stay). Everything runs on 127.0.0.1 against
# moi-ingest's own emulator. Prints the median time, the files and bytes sent, and what
# the volume holds after.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FILES:=1000}" "${SIZE_KB:=64}" "${ROUNDS:=3}"
cargo build --release --locked -q
BIN=$PWD/target/release/moi-ingest
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

emulator() { # starts an emulator with a fresh data folder; sets ADDR
  local data="$work/emu-$1"
  "$BIN" emulator --data "$data" --listen 127.0.0.1:0 --volume 7 --ingest-time 10ms >"$data.out" 2>&1 &
  for _ in $(seq 50); do grep -q 'listening on' "$data.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(grep -o 'http://127.0.0.1:[0-9]*' "$data.out" | head -n 1)
}
stat_of() { curl -s "$ADDR/_emulator/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
held() { curl -s "$ADDR/_emulator/volume?volume_id=7" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
night() { # runs one night; prints its wall time in seconds
  local start end
  start=$(date +%s.%N)
  HOME="$work/home" MOI_KEY=k MOI_ENDPOINT=$ADDR "$BIN" upload "$work/src" --volume 7 \
    --journal "$work/journal-$1.sqlite" --quiet --poll-interval 50ms "${@:2}" >/dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.2f}')"
}

results=()
for round in $(seq "$ROUNDS"); do
  for mode in delete plain; do
    rm -rf "$work/src" "$work/journal-"*; mkdir -p "$work/src/reports"
    python3 - "$work/src/reports" "$FILES" "$SIZE_KB" <<'PY'
import os, sys
root, n, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    with open(os.path.join(root, f"r{i:05}.pdf"), "wb") as f:
        f.write(os.urandom(kb * 1024))
PY
    emulator "$round-$mode"
    flag=(); [ "$mode" = delete ] && flag=(--delete)
    night "$mode" "${flag[@]}" >/dev/null
    sent0=$(stat_of files_accepted); bytes0=$(stat_of bytes_accepted)
    mv "$work/src/reports" "$work/src/reports-2026"
    secs=$(night "$mode" "${flag[@]}")
    results+=("$mode $secs $(( $(stat_of files_accepted) - sent0 )) $(( $(stat_of bytes_accepted) - bytes0 )) $(held)")
    kill %% 2>/dev/null; wait 2>/dev/null || true
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    mode, secs, files, nbytes, held = line.split()
    rows.setdefault(mode, []).append((float(secs), int(files), int(nbytes), int(held)))
print("| the night after a folder rename | time (median) | files sent | bytes sent | files in the volume after |")
print("| --- | --- | --- | --- | --- |")
for mode, label in (("delete", "with --delete (one folder rename)"), ("plain", "without (sent again)")):
    r = rows[mode]
    print(f"| {label} | {statistics.median(x[0] for x in r):.2f} s | {r[0][1]} | {r[0][2]:,} | {r[0][3]} |")
'
