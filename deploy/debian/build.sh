#!/usr/bin/env bash
# Builds the Debian package: target/debian/moi-ingest_<version>-1_<arch>.deb
#   bash deploy/debian/build.sh
# The binary is built without the emulator (--no-default-features), so the nightly job
# links no HTTP server; its man pages and completions are generated from that binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb@3.8.0
cargo build --release --locked -p moi-ingest --no-default-features
bin=target/release/moi-ingest
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash > "$assets/completions/moi-ingest"
"$bin" completions zsh > "$assets/completions/_moi-ingest"
"$bin" completions fish > "$assets/completions/moi-ingest.fish"
cargo deb --no-build --locked -p moi-ingest
