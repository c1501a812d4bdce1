#!/usr/bin/env bash
# The long run of the simulation test (server/tests/it/simulation.rs): seeded
# workloads, faults and clock jumps against both sandboxes, every invariant
# checked after every step. Prints the steps and faults by kind per seed.
# Usage: bench/simulation.sh [steps per seed] [seed ...]
#        (default 10,000 steps, seeds 0x5eed0001 0x5eed0002 0x5eed0003)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
steps=${1:-10000}
shift || true
seeds=("$@")
if [ ${#seeds[@]} -eq 0 ]; then
    seeds=(0x5eed0001 0x5eed0002 0x5eed0003)
fi
cargo build --release -p sql-databricks-bridge --test it
# Peak memory and wall time, where GNU time is installed.
timer=()
if [ -x /usr/bin/time ]; then
    timer=(/usr/bin/time -f "  peak memory of the run: %M KiB, wall %e s")
fi
for seed in "${seeds[@]}"; do
    echo "== simulation: seed ${seed}, ${steps} steps (release build)"
    ${timer[@]+"${timer[@]}"} \
        env SIM_SEED="$seed" SIM_STEPS="$steps" RUST_LOG=off \
        cargo test --release -q -p sql-databricks-bridge --test it -- simulation:: --nocapture 2>&1 \
        | grep -v '^note: trusting' || exit 1
done
