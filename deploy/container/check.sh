#!/usr/bin/env bash
# What CI builds and runs of the container. Base images cannot be pulled here, so the
# Containerfile's own build (FROM rust, then distroless) is not run; instead an image is
# made FROM scratch out of the binary that deploy/debian/build.sh built (no emulator) and
# the libraries it links, with the Containerfile's user, volume and entry point. It runs
# as the Kubernetes examples run it: non-root, read-only root file system, the folder
# mounted read-only, the journals on a volume; two nights against the emulator.
#   bash deploy/debian/build.sh && bash deploy/container/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$PWD/target/release/moi-ingest
emulator=$PWD/target/debug/moi-ingest
image=localhost/moi-ingest:ci
fail() { echo "container check: $*" >&2; exit 1; }
say() { echo "container check: $*"; }
[ -x "$bin" ] || fail "no $bin: run deploy/debian/build.sh first"

work=$(mktemp -d)
volume=moi-ingest-ci-state-$$
cleanup() {
  [ -n "${emu_pid:-}" ] && kill "$emu_pid" 2>/dev/null
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The image's root: the binary, the libraries ldd names, a nonroot user, /state and /tmp.
root=$work/root
mkdir -p "$root/usr/bin" "$root/etc" "$root/tmp" "$work/state"
cp "$bin" "$root/usr/bin/moi-ingest"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo 'nonroot:x:65532:65532:nonroot:/state:/sbin/nologin' > "$root/etc/passwd"
echo 'nonroot:x:65532:' > "$root/etc/group"
chmod 1777 "$root/tmp"
cat > "$work/Containerfile" <<'CF'
FROM scratch
COPY root/ /
# The journals' folder is the user's; a new volume takes its owner from it.
COPY --chown=65532:65532 state/ /state/
ENV XDG_STATE_HOME=/state
VOLUME /state
USER 65532:65532
ENTRYPOINT ["/usr/bin/moi-ingest"]
CF
podman build -q -f "$work/Containerfile" -t "$image" "$work" >/dev/null
size=$(podman image inspect "$image" --format '{{.Size}}')
user=$(podman image inspect "$image" --format '{{.Config.User}}')
[ "$user" = 65532:65532 ] || fail "the image runs as '$user'"
say "built $image FROM scratch: $((size / 1024 / 1024)) MiB, user $user"

# This sandbox's podman needs runc and limits no higher than its own.
run=(podman --runtime runc run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
if ! probe=$("${run[@]}" "$image" --version 2>&1); then
  if [[ $probe == *"OCI runtime"* || $probe == *"crun:"* || $probe == *"runc"* ]]; then
    say "podman cannot start containers on this machine ($probe): the image was built, not run"
    exit 0
  fi
  fail "the image's --version failed: $probe"
fi
say "runs: $probe"

mkdir -p "$work/papers/2026"
printf 'one\n' > "$work/papers/a.txt"; printf 'two\n' > "$work/papers/2026/b.txt"
chmod -R a+rX "$work/papers" "$work"
"$emulator" emulator --listen 127.0.0.1:0 --data "$work/emu" --api-key ci-key > "$work/emu.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/emu.log" && break; sleep 0.1; done
endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/emu.log" | head -1)
[ -n "$endpoint" ] || fail "the emulator did not start: $(cat "$work/emu.log")"
podman volume create "$volume" >/dev/null
night() {
  "${run[@]}" --network host --read-only --cap-drop ALL --security-opt no-new-privileges \
    -e MOI_KEY=ci-key -e MOI_ENDPOINT="$endpoint" \
    -v "$work/papers:/data/papers:ro" -v "$volume:/state" \
    "$image" upload /data/papers --volume 1889578498228068352 --poll-interval 100ms --json
}
first=$(night) || fail "the first night in the container failed: $first"
[[ $first == *'"uploaded":2'* ]] || fail "the first night did not upload both files: $first"
second=$(night) || fail "the second night failed: $second"
[[ $second == *'"uploaded":0'* && $second == *'"unchanged":2'* ]] \
  || fail "the second night did not resume from the journal on the volume: $second"
say "two nights non-root on a read-only root: 2 files uploaded, then 2 unchanged from the journal on the volume"
