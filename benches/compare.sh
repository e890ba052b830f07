#!/usr/bin/env bash
# Side-by-side benchmarks: moi-ingest and a reference tool on the same work, same machine,
# alternating which goes first, several rounds. Prints per work the median of each side
# and the median of the paired ratios (ratios, because shared 2-core machines are noisy).
#
#   bash benches/compare.sh            # the sizes of the performance issue
#   bash benches/compare.sh --quick    # smaller sizes, a few minutes
#   SCALE=1 bash benches/compare.sh    # adds work 7: 2,000,000 files, first run and rerun
#   ONLY="1 5" bash benches/compare.sh # only the works named
#   (work 8 is benches/vs_sdk.sh: the vendor's SDK and the emulator's own limit)
#
# Sizes can be overridden: ROUNDS SMALL BIG_MB RERUN FIRST HUGE_MB SCALE_FILES SDK_FILES.
# Everything runs on 127.0.0.1: an nginx sink that answers the upload, /task/files and
# /task/get calls with fixed JSON (and logs how many bytes each request carried, to check
# the bodies really crossed the wire), and moi-ingest's own emulator for the latency work.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
if [ "$QUICK" = 1 ]; then
  : "${ROUNDS:=3}" "${SMALL:=2000}" "${BIG_MB:=64}" "${RERUN:=50000}" "${FIRST:=200000}" "${HUGE_MB:=1024}"
else
  : "${ROUNDS:=5}" "${SMALL:=5000}" "${BIG_MB:=256}" "${RERUN:=200000}" "${FIRST:=1000000}" "${HUGE_MB:=16384}"
fi
: "${SCALE:=0}" "${SCALE_FILES:=2000000}" "${SDK_FILES:=2000}" "${ONLY:=1 2 3 4 5 6 7 8}"
want() { [[ " $ONLY " == *" $1 "* ]] && { [ "$1" != 7 ] || [ "$SCALE" = 1 ]; }; }
PORT=${PORT:-18931}
EMU_PORT=$((PORT + 1))
ANSWER_PORT=$((PORT + 2))
DISCARD_PORT=$((PORT + 3))
VOLUME=1889578498228068352

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need curl || [ ! -x /usr/bin/time ]; then
  echo "installing nginx, curl and time from Debian's packages..." >&2
  apt-get update -qq >/dev/null
  apt-get install -y -qq nginx-light curl time >/dev/null 2>&1 || apt-get install -y -qq nginx curl time >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --quiet
BIN=$PWD/target/release/moi-ingest

# tmpfs when there is one: the work measures the tools, not this machine's disk.
WORK=$(mktemp -d -p /dev/shm moi-compare.XXXXXX 2>/dev/null || mktemp -d)
cleanup() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  pkill -f "moi-ingest emulator --listen 127.0.0.1:$EMU_PORT" 2>/dev/null || true
  pkill -f "discard_sink.py $DISCARD_PORT" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/body" "$WORK/results"
# nginx workers run as another user and buffer large bodies under body/.
chmod 755 "$WORK" && chmod 777 "$WORK/body"

UPLOAD_ANSWER='{"code":"OK","msg":"OK","data":{"success":true,"file_id":"1889613341347389440","task_id":"1889613340219121664","message":"ok","results":[{"success":true,"file_id":"1889613341347389440","message":"ok"}]}}'
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  log_format bytes '\$msec \$request_length \$status';
  access_log $WORK/access.log bytes;
  client_max_body_size 0;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/body; fastcgi_temp_path $WORK/body; uwsgi_temp_path $WORK/body; scgi_temp_path $WORK/body;
  keepalive_requests 1000000;
  default_type application/json;
  # nginx answers a plain return before reading the body, so the upload goes through a
  # proxy location: nginx buffers the whole body first (that is what the logged
  # \$request_length checks), then asks the answering server with headers only.
  upstream answer { server 127.0.0.1:$ANSWER_PORT; keepalive 64; }
  client_body_buffer_size 1m;
  server {
    listen 127.0.0.1:$PORT;
    location = /connectors/upload {
      proxy_pass http://answer/upload;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Connection "";
      proxy_http_version 1.1;
    }
    location = /task/files { return 200 '{"code":"OK","msg":"OK","data":{"total":1,"total_success":1,"total_failed":0,"files":[{"id":"1889613341347389440","status":5}]}}'; }
    location = /task/get { return 200 '{"code":"OK","msg":"OK","data":{"task":{"id":"1889613340219121664","status":4}}}'; }
  }
  server {
    listen 127.0.0.1:$ANSWER_PORT;
    access_log off;
    location = /upload { return 200 '$UPLOAD_ANSWER'; }
  }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"
SINK=http://127.0.0.1:$PORT

# Files: python is faster than a shell loop for hundreds of thousands of them.
make_files() { # dir count size
  python3 - "$@" <<'EOF'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = bytes((i * 131) % 251 for i in range(size))
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 500))
    if i < 500:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%07d.txt" % i), "wb") as f:
        f.write(body)
EOF
}

# Runs a command under /usr/bin/time; appends "seconds max_rss_kib cpu_seconds" to $1 (CPU:
# user + system of the command and everything it waited for).
timed() {
  local out=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  # Through bash so shell functions run too; the peak RSS is the largest process's.
  /usr/bin/time -f "%M %U %S" -o "$WORK/rss" bash -c '"$@"' _ "$@" >"$WORK/last-stdout" 2>"$WORK/last-stderr" || {
    echo "failed: $*" >&2
    cat "$WORK/last-stderr" "$WORK/last-stdout" >&2
    exit 1
  }
  t1=$(date +%s.%N)
  echo "$(python3 -c "print($t1 - $t0)") $(tail -n1 "$WORK/rss" | awk '{print $1, $2 + $3}')" >>"$out"
}

sink_bytes() { awk '{n += $2} END {printf "%.0f\n", n}' "$WORK/access.log"; }
reset_log() { : >"$WORK/access.log"; }

moi_upload() { # dir journal extra...
  local dir=$1 journal=$2
  shift 2
  "$BIN" upload "$dir" --volume $VOLUME --endpoint "$SINK" --api-key bench-key --json \
    --journal "$journal" --no-wait -q "$@"
}

# One round of a rerun against find -printf, alternating which goes first.
rerun_round() { # round work dir journal
  local side
  for side in $( [ $(($1 % 2)) = 1 ] && echo "moi find" || echo "find moi"); do
    if [ "$side" = moi ]; then
      timed "$WORK/results/$2-moi" moi_upload "$3" "$4"
    else
      timed "$WORK/results/$2-find" find "$3" -type f -printf '%s %T@\n'
    fi
  done
}

export BIN SINK VOLUME WORK BIG_MB EMU_PORT
export -f moi_upload

# --- work 1: 5,000 x 4 KiB, fresh journal, --concurrency 16 vs curl --parallel ------------
if want 1; then
echo "work 1: $SMALL files x 4 KiB" >&2
make_files "$WORK/small" "$SMALL" 4096
python3 - "$WORK/small" "$SINK" >"$WORK/curl-small.cfg" <<'EOF'
import json, os, sys
root, sink = sys.argv[1], sys.argv[2]
first = True
for d, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)
        meta = json.dumps([{"file_name": rel, "file_size": os.path.getsize(p), "mime_type": "text/plain"}])
        if not first:
            print("next")
        first = False
        print(f'url = "{sink}/connectors/upload"')
        print('header = "moi-key: bench-key"')
        print(f'form = "file=@{p};type=text/plain;filename={rel}"')
        print('form = "VolumeID=1889578498228068352"')
        print("form-string = " + json.dumps("meta=" + meta))
        print('output = "/dev/null"')
EOF
for r in $(seq 1 "$ROUNDS"); do
  for side in $( [ $((r % 2)) = 1 ] && echo "moi batch curl" || echo "curl batch moi"); do
    reset_log
    if [ "$side" = moi ]; then
      rm -f "$WORK"/j1*
      timed "$WORK/results/w1-moi" moi_upload "$WORK/small" "$WORK/j1.sqlite" --concurrency 16 --batch-files 1
    elif [ "$side" = batch ]; then
      rm -f "$WORK"/j1*
      timed "$WORK/results/w1-batch" moi_upload "$WORK/small" "$WORK/j1.sqlite" --concurrency 16
    else
      timed "$WORK/results/w1-curl" curl -s --parallel --parallel-max 16 -K "$WORK/curl-small.cfg"
    fi
    bytes=$(sink_bytes)
    [ "$bytes" -ge $((SMALL * 4096)) ] || { echo "work 1 ($side): only $bytes bytes reached the sink" >&2; exit 1; }
  done
done
fi

# --- work 2: 4 x 256 MiB, fresh journal vs 4 parallel curl -F ---------------------------
if want 2 || want 5; then
  mkdir -p "$WORK/big"
  for i in 1 2 3 4; do head -c $((BIG_MB << 20)) /dev/urandom >"$WORK/big/part$i.bin"; done
fi
if want 2; then
echo "work 2: 4 files x $BIG_MB MiB" >&2
curl_big() {
  for i in 1 2 3 4; do
    curl -s -o /dev/null -H "moi-key: bench-key" -F "file=@$WORK/big/part$i.bin;type=application/octet-stream" \
      -F "VolumeID=$VOLUME" \
      -F "meta=[{\"file_name\":\"part$i.bin\",\"file_size\":$((BIG_MB << 20)),\"mime_type\":\"application/octet-stream\"}]" \
      "$SINK/connectors/upload" &
  done
  wait
}
export -f curl_big
for r in $(seq 1 "$ROUNDS"); do
  for side in $( [ $((r % 2)) = 1 ] && echo "moi curl" || echo "curl moi"); do
    reset_log
    if [ "$side" = moi ]; then
      rm -f "$WORK"/j2*
      timed "$WORK/results/w2-moi" moi_upload "$WORK/big" "$WORK/j2.sqlite" --concurrency 4
    else
      timed "$WORK/results/w2-curl" curl_big
    fi
    bytes=$(sink_bytes)
    [ "$bytes" -ge $((4 * (BIG_MB << 20))) ] || { echo "work 2 ($side): only $bytes bytes reached the sink" >&2; exit 1; }
  done
done
fi

# --- work 3: rerun over unchanged files, warm journal vs find -printf --------------------
if want 3; then
echo "work 3: rerun over $RERUN unchanged files" >&2
make_files "$WORK/many" "$RERUN" 16
moi_upload "$WORK/many" "$WORK/j3.sqlite" --concurrency 32 >/dev/null
small_rerun=$((RERUN / 10))
make_files "$WORK/fewer" "$small_rerun" 16
moi_upload "$WORK/fewer" "$WORK/j3b.sqlite" --concurrency 32 >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  rerun_round "$r" w3 "$WORK/many" "$WORK/j3.sqlite"
  timed "$WORK/results/w3-moi-tenth" moi_upload "$WORK/fewer" "$WORK/j3b.sqlite"
done
rm -rf "$WORK/many" "$WORK/fewer"
fi

# --- work 4: 4 KiB files against the emulator with 20 ms latency vs the ideal ------------
if want 4; then
[ -d "$WORK/small" ] || make_files "$WORK/small" "$SMALL" 4096
echo "work 4: $SMALL files x 4 KiB, emulator with 20 ms latency" >&2
emu_run() { # round extra...
  local r=$1
  shift
  rm -rf "$WORK/emu" "$WORK"/j4*
  "$BIN" emulator --listen 127.0.0.1:$EMU_PORT --data "$WORK/emu" --latency 20ms >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$EMU_PORT/_emulator/stats" && break; sleep 0.05; done
  "$BIN" upload "$WORK/small" --volume $VOLUME --endpoint "http://127.0.0.1:$EMU_PORT" --api-key k \
    --journal "$WORK/j4.sqlite" --no-wait -q --concurrency 16 "$@"
  kill $pid
  wait $pid 2>/dev/null || true
}
export -f emu_run
for r in $(seq 1 "$ROUNDS"); do
  timed "$WORK/results/w4-moi" emu_run "$r" --batch-files 1
  timed "$WORK/results/w4-batch" emu_run "$r"
done
fi

# --- work 5: one huge sparse file, peak memory and throughput ----------------------------
# nginx would buffer the body on tmpfs (half the RAM at most), so this work uses a sink that
# reads every byte and keeps none, and measures 4 x BIG_MB on the same sink for reference.
if want 5; then
echo "work 5: one sparse file of $HUGE_MB MiB" >&2
python3 benches/discard_sink.py "$DISCARD_PORT" "$WORK/discard.log" &
for _ in $(seq 1 100); do curl -s -o /dev/null -X POST "http://127.0.0.1:$DISCARD_PORT/" && break; sleep 0.05; done
discard_upload() { # dir journal
  "$BIN" upload "$1" --volume $VOLUME --endpoint "http://127.0.0.1:$DISCARD_PORT" --api-key bench-key \
    --json --journal "$2" --no-wait -q --concurrency 4
}
export -f discard_upload
export DISCARD_PORT
discard_bytes() { awk '{n += $2} END {printf "%.0f\n", n}' "$WORK/discard.log"; }
mkdir -p "$WORK/huge"
truncate -s $((HUGE_MB << 20)) "$WORK/huge/huge.bin"
for r in $(seq 1 "$ROUNDS"); do
  : >"$WORK/discard.log"
  rm -f "$WORK"/j5*
  timed "$WORK/results/w5-moi" discard_upload "$WORK/huge" "$WORK/j5.sqlite"
  [ "$(discard_bytes)" -ge $((HUGE_MB << 20)) ] || { echo "work 5: the body did not reach the sink" >&2; exit 1; }
  : >"$WORK/discard.log"
  # What one connection carries into this sink at most: curl, same file, no journal.
  timed "$WORK/results/w5-curl" curl -s -o /dev/null -H "moi-key: bench-key" \
    -F "file=@$WORK/huge/huge.bin;type=application/octet-stream" -F "VolumeID=$VOLUME" \
    "http://127.0.0.1:$DISCARD_PORT/connectors/upload"
  [ "$(discard_bytes)" -ge $((HUGE_MB << 20)) ] || { echo "work 5: curl's body did not reach the sink" >&2; exit 1; }
  : >"$WORK/discard.log"
  rm -f "$WORK"/j5*
  timed "$WORK/results/w5-four" discard_upload "$WORK/big" "$WORK/j5.sqlite"
  [ "$(discard_bytes)" -ge $((4 * (BIG_MB << 20))) ] || { echo "work 5: the 4 files did not reach the sink" >&2; exit 1; }
done
rm -rf "$WORK/huge"
fi
rm -rf "$WORK/big"

# --- work 6: time to the first upload request on a large tree ---------------------------
if want 6; then
echo "work 6: first request on a tree of $FIRST files" >&2
make_files "$WORK/first" "$FIRST" 1
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$WORK"/j6*
  reset_log
  t0=$(date +%s.%N)
  moi_upload "$WORK/first" "$WORK/j6.sqlite" --concurrency 16 >/dev/null &
  pid=$!
  for _ in $(seq 1 600); do [ -s "$WORK/access.log" ] && break; sleep 0.01; done
  kill -INT $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  first=$(head -n1 "$WORK/access.log" | cut -d' ' -f1)
  python3 -c "print($first - $t0, 0)" >>"$WORK/results/w6-moi"
done
rm -rf "$WORK/first"
fi

# --- work 7 (SCALE=1): 2,000,000 empty files, nested, at most 1,000 to a folder ---------
# The first full run to the sink: peak memory, journal bytes per file, and whether the pace
# holds as the journal grows (requests per second in the first and last tenth of the run;
# every request but the last carries 32 files). Then reruns against find -printf.
if want 7; then
echo "work 7: $SCALE_FILES files, first run and reruns" >&2
python3 benches/empty_tree.py "$WORK/scale" "$SCALE_FILES"
reset_log
timed "$WORK/results/w7-first" moi_upload "$WORK/scale" "$WORK/j7.sqlite" --concurrency 16
python3 - "$WORK/access.log" "$WORK/j7.sqlite" "$SCALE_FILES" >"$WORK/results/w7-facts" <<'EOF'
import os, sys
log, journal, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = sorted(float(l.split()[0]) for l in open(log) if l.strip())
tenth = max(len(times) // 10, 2)
def rate(ts): return (len(ts) - 1) / max(ts[-1] - ts[0], 1e-3)
print(os.path.getsize(journal) / n, rate(times[:tenth]), rate(times[-tenth:]), len(times))
EOF
for r in $(seq 1 "$ROUNDS"); do
  rerun_round "$r" w7 "$WORK/scale" "$WORK/j7.sqlite"
done
rm -rf "$WORK/scale"
fi

# --- work 8: the vendor's SDK, and the emulator's own limit ------------------------------
if want 8; then
echo "work 8: $SDK_FILES documents, the vendor's SDK and a no-op client" >&2
bash benches/vs_sdk.sh "$ROUNDS" "$SDK_FILES" >"$WORK/results/w8-sdk" 2>&1 \
  || { cat "$WORK/results/w8-sdk" >&2; exit 1; }
fi

# --- the table ----------------------------------------------------------------------------
python3 - "$WORK/results" "$SMALL" "$BIG_MB" "$RERUN" "$FIRST" "$HUGE_MB" "$SCALE_FILES" "$SDK_FILES" <<'EOF'
import statistics as st, sys, os
d = sys.argv[1]
small, big, rerun, first, huge, scale, sdk_files = (int(x) for x in sys.argv[2:9])
def have(*names): return all(os.path.exists(os.path.join(d, n)) for n in names)
def rows(name):
    with open(os.path.join(d, name)) as f:
        return [tuple(float(x) for x in line.split()) for line in f if line.strip()]
def secs(name): return [r[0] for r in rows(name)]
def rss(name): return max(r[1] for r in rows(name)) / 1024
def cpu_us(name, files): return med([r[2] for r in rows(name)]) / files * 1e6
def paired(a, b): return med([y / x for x, y in zip(a, b)])
med = st.median
out = []
if have("w1-moi", "w1-curl", "w1-batch"):
    a, b, c = secs("w1-moi"), secs("w1-curl"), secs("w1-batch")
    out.append((f"{small:,} x 4 KiB, --batch-files 1 --concurrency 16 --no-wait", f"{small/med(a):,.0f} files/s", f"curl --parallel: {small/med(b):,.0f} files/s", f"{paired(a, b):.2f}x", ">= 1.5x", rss("w1-moi")))
    out.append(("  client CPU a file (user + system, whole process)", f"{cpu_us('w1-moi', small):.0f} us", f"curl: {cpu_us('w1-curl', small):.0f} us", "", "<= 60 us", ""))
    out.append(("  same, default batching (32 files a request)", f"{small/med(c):,.0f} files/s", f"curl --parallel: {small/med(b):,.0f} files/s", f"{paired(c, b):.2f}x", ">= 5x", rss("w1-batch")))
if have("w2-moi", "w2-curl"):
    a, b = secs("w2-moi"), secs("w2-curl")
    mb = 4 * big * 1.048576
    out.append((f"4 x {big} MiB", f"{mb/med(a):,.0f} MB/s", f"4 x curl -F: {mb/med(b):,.0f} MB/s", f"{paired(a, b):.2f}x", ">= 1.0x", rss("w2-moi")))
if have("w3-moi", "w3-find"):
    a, b = secs("w3-moi"), secs("w3-find")
    out.append((f"rerun, {rerun:,} unchanged files", f"{med(a):.2f} s", f"find -printf: {med(b):.2f} s", f"{med([x / y for x, y in zip(a, b)]):.2f}x the time", "<= 1.2x", rss("w3-moi")))
    out.append((f"rerun, {rerun//10:,} unchanged files", f"{med(secs('w3-moi-tenth')):.2f} s", "", "", "", rss("w3-moi-tenth")))
if have("w4-moi", "w4-batch"):
    ideal = 16 / 0.020
    a, c = secs("w4-moi"), secs("w4-batch")
    out.append((f"{small:,} x 4 KiB, emulator +20 ms, --concurrency 16 --batch-files 1", f"{small/med(a):,.0f} files/s", f"ideal {ideal:.0f} files/s", f"{small/med(a)/ideal:.2f}x", ">= 0.8x", rss("w4-moi")))
    out.append(("  same, default batching", f"{small/med(c):,.0f} files/s", f"ideal {ideal:.0f} files/s", f"{small/med(c)/ideal:.2f}x", "", rss("w4-batch")))
if have("w5-moi", "w5-four"):
    a, b = secs("w5-moi"), secs("w5-four")
    mb_huge, mb_four = huge * 1.048576, 4 * big * 1.048576
    ratio = med([(mb_huge / x) / (mb_four / y) for x, y in zip(a, b)])
    out.append((f"one sparse {huge:,} MiB file (discard sink)", f"{mb_huge/med(a):,.0f} MB/s", f"4 x {big} MiB, same sink: {mb_four/med(b):,.0f} MB/s", f"{ratio:.2f}x", ">= 0.9x; RSS <= 64 MiB", rss("w5-moi")))
    if have("w5-curl"):
        c = secs("w5-curl")
        out.append(("  same file, one connection's ceiling", f"{mb_huge/med(a):,.0f} MB/s", f"curl -F, same file and sink: {mb_huge/med(c):,.0f} MB/s", f"{paired(a, c):.2f}x", "", 0))
if have("w6-moi"):
    out.append((f"first request, {first:,}-file tree", f"{med(secs('w6-moi')):.3f} s", "", "", "<= 0.5 s", 0))
if have("w7-first", "w7-facts", "w7-moi", "w7-find"):
    per_file, first_rate, last_rate, requests = (float(x) for x in open(os.path.join(d, "w7-facts")).read().split())
    t = secs("w7-first")[0]
    out.append((f"first run, {scale:,} tiny files, nested", f"{scale/t:,.0f} files/s; journal {per_file:.0f} B/file", f"last tenth / first tenth: {last_rate/first_rate:.2f}x ({requests:,.0f} requests)", "", "RSS <= 64 MiB; <= 200 B/file; within 20%", rss("w7-first")))
    a, b = secs("w7-moi"), secs("w7-find")
    out.append((f"rerun, {scale:,} unchanged files", f"{med(a):.2f} s", f"find -printf: {med(b):.2f} s", f"{med([x / y for x, y in zip(a, b)]):.2f}x the time", "<= 1.2x", rss("w7-moi")))
if have("w8-sdk"):
    import re
    text = open(os.path.join(d, "w8-sdk")).read()
    num = lambda pattern: float(re.search(pattern, text).group(1))
    ours, sdk = num(r"moi-ingest \(defaults\): median ([\d.]+)"), num(r"vendor SDK .*?: median ([\d.]+)")
    ratio, limit = num(r"paired ratio: median ([\d.]+)x"), num(r"emulator's limit .*?: median ([\d.]+)")
    of_limit = num(r"moi-ingest / limit: median ([\d.]+)x")
    out.append((f"{sdk_files:,} documents, log-normal sizes, emulator +20 ms, defaults", f"{ours:,.0f} files/s", f"vendor SDK, batches of 16: {sdk:,.0f} files/s", f"{ratio:.1f}x", ">= 10x", 0))
    out.append(("  same, against the emulator's own limit", f"{ours:,.0f} files/s", f"no-op client (curl): {limit:,.0f} files/s", f"{of_limit:.2f}x", ">= 0.8x", 0))
print("| work | moi-ingest (median) | reference (median) | paired ratio | target | moi-ingest peak RSS |")
print("| --- | --- | --- | --- | --- | --- |")
for w, m, r, q, t, mem in out:
    print(f"| {w} | {m} | {r} | {q} | {t} | {mem:.1f} MiB |" if mem else f"| {w} | {m} | {r} | {q} | {t} | - |")
EOF
