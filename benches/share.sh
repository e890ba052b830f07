#!/usr/bin/env bash
# Nights on a network share, simulated: ../shared/tools/slowfs.py mounts a folder through
# FUSE with a fixed delay on every metadata call (getattr, readdir, open, access), as a
# share answers a stat with a round trip. moi-ingest is measured beside find and rclone on
# the same mount, alternating who goes first, and each target's ratio is printed.
#
#   bash benches/share.sh                    # 10,000 files, 1 ms and 5 ms, 3 rounds
#   ROUNDS=1 DELAYS=1 bash benches/share.sh  # one quick round at 1 ms
#   MOI_FLAGS="--checkers 32" DELAYS=5 bash benches/share.sh
#
# Needs root (FUSE mounts), and installs what is missing: libfuse2, fuse3 and rclone from
# Debian's packages, fusepy in a venv under target/. Everything stays on this machine: the
# uploads go to moi-ingest's own emulator on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FILES:=10000}" "${ROUNDS:=3}" "${DELAYS:=1 5}"
SLOWFS=$(cd .. && pwd)/shared/tools/slowfs.py
[ -f "$SLOWFS" ] || { echo "no $SLOWFS: run from a clone with ../shared beside it" >&2; exit 2; }
if ! command -v rclone >/dev/null || ! command -v fusermount >/dev/null || ! ldconfig -p | grep -q libfuse.so.2; then
  echo "installing libfuse2, fuse3 and rclone from Debian's packages..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq libfuse2 fuse3 rclone >/dev/null
fi
venv=target/share-bench-venv
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import fuse' 2>/dev/null || {
  python3 -m venv "$venv" && "$venv/bin/pip" install -q fusepy
}
cargo build --release --locked -q
BIN=$PWD/target/release/moi-ingest
work=$(mktemp -d)
mnt=$work/mnt
cleanup() { fusermount -u "$mnt" 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/src" "$mnt"
python3 - "$work/src" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "dir%03d" % (i % 100), "sub%d" % (i % 4))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "file%05d.txt" % i), "w") as f:
        f.write("x" * 100)
PY
"$BIN" emulator --data "$work/emu" --listen 127.0.0.1:0 --volume 7 --ingest-time 10ms >"$work/emu.out" 2>&1 &
for _ in $(seq 50); do grep -q 'listening on' "$work/emu.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/emu.out" | head -n 1)

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); python3 -c "print($e - $s)"; }
# MOI_FLAGS: extra flags for every moi-ingest run (e.g. MOI_FLAGS="--checkers 32").
moi() { HOME=$work MOI_KEY=k "$BIN" upload "$mnt" --volume 7 --endpoint "$ADDR" --quiet --no-wait ${MOI_FLAGS:-} "$@"; }
rss_kib=0
peak() { # runs a command under /usr/bin/time when present, keeping the largest RSS seen
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%M' -o "$work/rss" "$@" >/dev/null 2>&1 || true
    local r; r=$(tail -n 1 "$work/rss")
    if [ "$r" -gt "$rss_kib" ]; then rss_kib=$r; fi
  else "$@" >/dev/null 2>&1 || true; fi
}

for delay in $DELAYS; do
  "$venv/bin/python" "$SLOWFS" "$work/src" "$mnt" --delay-ms "$delay" --foreground >"$work/fuse.log" 2>&1 &
  for _ in $(seq 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
  # A warm journal for the reruns: one first night, not timed.
  moi --journal "$work/rerun.sqlite" --prefix "warm$delay"
  declare -a M F R C N
  M=(); F=(); R=(); C=(); N=()
  for round in $(seq "$ROUNDS"); do
    # Alternate who goes first, so neither always meets a warm or a cold cache.
    if [ $((round % 2)) = 1 ]; then
      M+=("$(secs moi --journal "$work/rerun.sqlite" --prefix "warm$delay")")
      F+=("$(secs find "$mnt" -type f -printf '%s %T@\n')")
      R+=("$(secs rclone lsf -R --format pst --checkers 8 "$mnt")")
    else
      R+=("$(secs rclone lsf -R --format pst --checkers 8 "$mnt")")
      F+=("$(secs find "$mnt" -type f -printf '%s %T@\n')")
      M+=("$(secs moi --journal "$work/rerun.sqlite" --prefix "warm$delay")")
    fi
    if [ "$delay" = "$(echo $DELAYS | cut -d' ' -f1)" ]; then
      rm -rf "$work/copy" "$work/first.sqlite"
      N+=("$(secs moi --journal "$work/first.sqlite" --prefix "first$delay-$round")")
      C+=("$(secs rclone copy --transfers 8 "$mnt" "$work/copy")")
    fi
  done
  peak env HOME="$work" MOI_KEY=k "$BIN" upload "$mnt" --volume 7 --endpoint "$ADDR" --quiet \
    --no-wait --journal "$work/rerun.sqlite" --prefix "warm$delay"
  python3 - "$delay" "${M[*]}" "${F[*]}" "${R[*]}" "${N[*]:-}" "${C[*]:-}" <<'PY'
import statistics, sys
delay = sys.argv[1]
m, f, r = ([float(x) for x in a.split()] for a in sys.argv[2:5])
n = [float(x) for x in sys.argv[5].split()] if sys.argv[5].strip() else []
c = [float(x) for x in sys.argv[6].split()] if sys.argv[6].strip() else []
med = statistics.median
ratio = lambda a, b: med(x / y for x, y in zip(a, b))
print(f"--- {delay} ms a metadata call, {len(m)} rounds (medians)")
print(f"rerun: moi-ingest {med(m):.1f} s, find {med(f):.1f} s, rclone lsf -R {med(r):.1f} s")
print(f"  rerun / rclone lsf: {ratio(m, r):.2f} (target <= 1.0 at 1 ms)")
print(f"  rerun / find:       {ratio(m, f):.2f} (target <= 0.3 at 1 ms, <= 0.15 at 5 ms)")
if n:
    print(f"first night: moi-ingest {med(n):.1f} s, rclone copy --transfers 8 {med(c):.1f} s")
    print(f"  first night / rclone copy: {ratio(n, c):.2f} (target <= 1.0)")
PY
  if [ "$rss_kib" -gt 0 ]; then echo "  peak RSS of a rerun: $((rss_kib / 1024)) MiB (target <= 64)"; fi
  fusermount -u "$mnt"
  sleep 0.5
done
