#!/usr/bin/env bash
# Builds the release binaries and runs the data service benchmark (about 20 s on 2 cores);
# prints a markdown table. Extra arguments go to data-bench (see `data-bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p tradepact-data -p tradepact-bench
exec target/release/data-bench "$@"
