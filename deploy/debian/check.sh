#!/usr/bin/env bash
# What CI checks of the Debian package, as an operator would meet it: install it with
# dpkg, check every file it promises, run one night of a templated job's command line
# against the emulator, remove it, and check that settings and journals stay.
#   bash deploy/debian/build.sh && bash deploy/debian/check.sh
# Needs root (dpkg -i) and the emulator of a default build (target/debug/moi-ingest, as
# `cargo test` leaves it).
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(ls target/debian/moi-ingest_*.deb)
emulator=$PWD/target/debug/moi-ingest
fail() { echo "deb check: $*" >&2; exit 1; }
say() { echo "deb check: $*"; }

dpkg -i "$deb" >/dev/null
say "installed $(basename "$deb")"
trap 'dpkg -r moi-ingest >/dev/null 2>&1 || true' EXIT

# The binary, its version and commit, and no server in it.
[ "$(command -v moi-ingest)" = /usr/bin/moi-ingest ] || fail "moi-ingest is not /usr/bin/moi-ingest"
version=$(moi-ingest --version)
[[ $version =~ ^moi-ingest\ [0-9.]+\ \(commit\ ([0-9a-f]{12}|unknown)\)$ ]] || fail "--version says: $version"
set +e; out=$(moi-ingest emulator --data /tmp/x 2>&1); rc=$?; set -e
[ $rc -eq 2 ] && [[ $out == *"not in this build"* ]] || fail "the packaged emulator command says ($rc): $out"
say "$version, built without the emulator"

# A man page for every command, and the top page's references resolve.
for page in moi-ingest moi-ingest-upload moi-ingest-status moi-ingest-retry moi-ingest-verify moi-ingest-ls; do
  [ -f /usr/share/man/man1/$page.1.gz ] || fail "no man page $page(1)"
done
zcat /usr/share/man/man1/moi-ingest-upload.1.gz | grep -q 'metrics\\-push' || fail "moi-ingest-upload(1) lacks --metrics-push"
for ref in $(zcat /usr/share/man/man1/moi-ingest.1.gz | grep -o 'moi\\-ingest\\-[a-z\\-]*(1)' | sed 's/\\//g; s/(1)//'); do
  [ -f "/usr/share/man/man1/$ref.1.gz" ] || fail "moi-ingest(1) points to $ref(1), which is not installed"
done
if command -v man >/dev/null; then
  man -w moi-ingest-upload >/dev/null || fail "man does not find moi-ingest-upload"
fi
say "$(ls /usr/share/man/man1/moi-ingest*.1.gz | wc -l) man pages"

# Completions where each shell looks, and bash's completes options.
[ -s /usr/share/zsh/vendor-completions/_moi-ingest ] || fail "no zsh completion"
[ -s /usr/share/fish/vendor_completions.d/moi-ingest.fish ] || fail "no fish completion"
got=$(bash -c 'source /usr/share/bash-completion/completions/moi-ingest
  COMP_WORDS=(moi-ingest upload --con); COMP_CWORD=2
  _moi__ingest moi-ingest --con upload; printf "%s\n" "${COMPREPLY[@]}"')
[[ $got == *--concurrency* ]] || fail "bash completes 'upload --con' with: $got"
say "completions for bash (upload --con -> $(echo $got | tr '\n' ' ')), zsh and fish"

# The units: systemd's own check, and its security score.
[ "$(stat -c %a /etc/moi-ingest)" = 700 ] || fail "/etc/moi-ingest is not 0700"
[ "$(stat -c %a /etc/moi-ingest/example.env)" = 600 ] || fail "example.env is not 0600"
if command -v systemd-analyze >/dev/null; then
  units=$(mktemp -d)
  cp /lib/systemd/system/moi-ingest@.service "$units/moi-ingest@ci.service"
  cp /lib/systemd/system/moi-ingest@.timer "$units/moi-ingest@ci.timer"
  man_check=--man=no; command -v man >/dev/null && man_check=--man=yes
  systemd-analyze verify $man_check "$units/moi-ingest@ci.service" "$units/moi-ingest@ci.timer" \
    || fail "systemd-analyze verify refuses the units"
  score=$(systemd-analyze security --offline=true "$units/moi-ingest@ci.service" 2>&1 \
    | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "exposure $score, above 2.0"
  say "systemd-analyze verify passes; exposure $score"
  rm -rf "$units"
else
  say "systemd-analyze is not here: the units were not verified"
fi

# One night of a job as the template unit runs it: its environment file, its ExecStart.
work=$(mktemp -d)
mkdir -p "$work/papers/2026" "$work/state"
printf 'one\n' > "$work/papers/a.txt"; printf 'two\n' > "$work/papers/2026/b.txt"
"$emulator" emulator --listen 127.0.0.1:0 --data "$work/emu" --api-key ci-key > "$work/emu.log" 2>&1 &
emu_pid=$!
trap 'kill $emu_pid 2>/dev/null; dpkg -r moi-ingest >/dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$work/emu.log" && break; sleep 0.1; done
endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/emu.log" | head -1)
[ -n "$endpoint" ] || fail "the emulator did not start: $(cat "$work/emu.log")"
cat > /etc/moi-ingest/ci.env <<ENV
MOI_KEY=ci-key
MOI_ENDPOINT=$endpoint
MOI_INGEST_FOLDER=$work/papers
MOI_VOLUME=1889578498228068352
MOI_INGEST_FLAGS=--max-duration 10m --poll-interval 100ms
ENV
chmod 600 /etc/moi-ingest/ci.env
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/moi-ingest@.service)
(
  # As systemd reads an EnvironmentFile: KEY=value a line, the value as written.
  while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    export "${line%%=*}=${line#*=}"
  done < /etc/moi-ingest/ci.env
  export XDG_STATE_HOME=$work/state
  # systemd's ${VAR} is one word, $VAR is split on spaces: the same as sh's "${VAR}" and $VAR.
  eval "set -- $(echo "$exec_start" | sed 's/\${\([A-Z_]*\)}/"${\1}"/g')"
  "$@" > "$work/night.log" 2>&1
) || fail "the job's night failed: $(cat "$work/night.log")"
grep -q "2 uploaded" "$work/night.log" || fail "the night did not upload both files: $(cat "$work/night.log")"
journal=$(ls "$work"/state/moi-ingest/journals/*.sqlite)
say "a night of moi-ingest@ci: 2 files uploaded, journal $(basename "$journal")"

# Removing the package keeps each job's settings and its journal.
dpkg -r moi-ingest >/dev/null
[ ! -e /usr/bin/moi-ingest ] || fail "/usr/bin/moi-ingest is still there after dpkg -r"
[ -f /etc/moi-ingest/example.env ] && [ -f /etc/moi-ingest/ci.env ] || fail "dpkg -r removed /etc/moi-ingest"
[ -f "$journal" ] || fail "the journal is gone"
say "removed; /etc/moi-ingest and the journal stay"
rm -f /etc/moi-ingest/ci.env
dpkg --purge moi-ingest >/dev/null
rm -rf "$work"
