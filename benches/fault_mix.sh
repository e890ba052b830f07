#!/usr/bin/env bash
# The independent fault mix, 20 times in a row (issue: "400 of 400 must arrive, every
# time"): each round runs the integration test with another fault seed. Not run by CI.
#   bash benches/fault_mix.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-20}
cargo test --release --test it --no-run >/dev/null 2>&1
failed=0
for seed in $(seq 1 "$rounds"); do
  if FAULT_SEED=$seed cargo test --release --test it --quiet \
      every_file_arrives_through_a_30_percent_transient_mix_with_default_attempts \
      >/tmp/fault-mix-$seed.log 2>&1; then
    echo "round $seed: 400 of 400 arrived"
  else
    echo "round $seed: FAILED (see /tmp/fault-mix-$seed.log)"
    failed=$((failed + 1))
  fi
done
echo "$((rounds - failed)) of $rounds rounds delivered every file"
[ "$failed" -eq 0 ]
