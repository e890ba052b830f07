#!/usr/bin/env bash
# moi-ingest against the vendor's Python SDK (import_local_files_to_volume in batches of 16,
# from one process, as its documentation shows), same files, same emulator with 20 ms
# latency, alternating which goes first, ROUNDS rounds; medians and the median of the
# paired ratios. 2,000 documents with log-normal sizes (median 200 KiB, at most 50 MiB).
# A third side measures the emulator's own limit with a client that does no work of its
# own: curl sending the same files 32 to a request, 16 requests at a time, no journal.
#   bash benches/vs_sdk.sh [ROUNDS] [FILES]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
files=${2:-2000}
venv=target/vendor-sdk-venv
if ! "$venv/bin/python" -c 'import moi' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check moi-python-sdk==0.1.1.dev0
fi
cargo build --release --quiet
bin=target/release/moi-ingest
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'jobs -p | xargs -r kill 2>/dev/null; rm -rf "$work"' EXIT
python3 - "$work/docs" "$files" <<'PY'
import os, random, sys
folder, n = sys.argv[1], int(sys.argv[2])
os.makedirs(folder)
rng = random.Random(7)
for i in range(n):
    size = min(int(rng.lognormvariate(0, 1.0) * 200 * 1024), 50 << 20)
    with open(os.path.join(folder, f"doc-{i:05}.pdf"), "wb") as f:
        f.write(os.urandom(min(size, 4096)) * (size // 4096) + os.urandom(size % 4096))
PY
total=$(du -sb "$work/docs" | cut -f1)
# The no-op client: one curl config of FILES/32 requests, each with 32 file parts.
python3 - "$work/docs" >"$work/curl.cfg" <<'PY'
import os, sys
folder = sys.argv[1]
names = sorted(os.listdir(folder))
for i in range(0, len(names), 32):
    if i:
        print("next")
    print('url = "URL/connectors/upload"')
    print('header = "moi-key: bench-key"')
    print('form = "VolumeID=1889578498228068352"')
    for n in names[i:i + 32]:
        print(f'form = "file=@{os.path.join(folder, n)};type=application/pdf"')
    print('output = "/dev/null"')
PY
echo "work: $files documents, $((total / 1024 / 1024)) MiB, emulator with 20 ms latency"
ours=(); theirs=(); ratios=(); limit=()
for round in $(seq 1 "$rounds"); do
  for who in $( [ $((round % 2)) -eq 1 ] && echo "ours theirs limit" || echo "limit theirs ours" ); do
    rm -rf "$work/emu" "$work/journal.sqlite"*
    "$bin" emulator --data "$work/emu" --listen 127.0.0.1:0 --latency 20ms --api-key bench-key >"$work/emu.out" 2>&1 &
    emu=$!
    for _ in $(seq 1 50); do grep -q listening "$work/emu.out" && break; sleep 0.1; done
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/emu.out") \
      || { echo "the emulator did not start:"; cat "$work/emu.out"; exit 1; }
    if [ "$who" = ours ]; then
      start=$(date +%s.%N)
      MOI_KEY=bench-key MOI_ENDPOINT=$url "$bin" upload "$work/docs" --volume 1889578498228068352 \
        --journal "$work/journal.sqlite" --no-wait --quiet \
        || { echo "moi-ingest failed (exit $?); emulator said:"; cat "$work/emu.out"; exit 1; }
      end=$(date +%s.%N)
      rate=$(python3 -c "print(f'{$files / ($end - $start):.1f}')")
      ours+=("$rate")
    elif [ "$who" = limit ]; then
      start=$(date +%s.%N)
      sed "s|URL|$url|" "$work/curl.cfg" | curl -s -f --no-progress-meter --parallel --parallel-max 16 -K - \
        || { echo "curl failed; emulator said:"; cat "$work/emu.out"; exit 1; }
      end=$(date +%s.%N)
      stored=$(curl -s "$url/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["files_accepted"])')
      [ "$stored" -ge "$files" ] || { echo "the no-op client stored only $stored files"; exit 1; }
      rate=$(python3 -c "print(f'{$files / ($end - $start):.1f}')")
      limit+=("$rate")
    else
      rate=$("$venv/bin/python" benches/vs_sdk.py "$url" bench-key 1889578498228068352 "$work/docs") \
        || { echo "the SDK run failed; emulator said:"; cat "$work/emu.out"; exit 1; }
      theirs+=("$rate")
    fi
    echo "round $round: $who $rate files/s"
    kill $emu; wait $emu 2>/dev/null || true
  done
  ratios+=("$(python3 -c "print(${ours[-1]} / ${theirs[-1]})")")
done
python3 - "${ours[*]}" "${theirs[*]}" "${ratios[*]}" "${limit[*]}" <<'PY'
import statistics, sys
o, t, r, l = ([float(x) for x in a.split()] for a in sys.argv[1:5])
print(f"moi-ingest (defaults): median {statistics.median(o):.0f} files/s")
print(f"vendor SDK (batches of 16): median {statistics.median(t):.0f} files/s")
print(f"paired ratio: median {statistics.median(r):.1f}x")
print(f"emulator's limit (curl, 32 files a request, 16 at a time, no journal): median {statistics.median(l):.0f} files/s")
print(f"moi-ingest / limit: median {statistics.median([a / b for a, b in zip(o, l)]):.2f}x")
PY
exit 0
