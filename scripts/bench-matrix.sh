#!/usr/bin/env bash
# The matrix at 10^8 and 3×10^8 points (issue #27): matrix-bench beside DuckDB, without
# PostgreSQL, to show how load time, memory and bytes on disk grow with the matrix. The
# generator streams the CSV (about 5 GB at 10^8, 15 GB at 3×10^8; it holds 8 bytes a series);
# the files live in a temporary directory removed at the end. Not part of scripts/bench.sh
# (tens of minutes on 2 cores). Usage: bash scripts/bench-matrix.sh [POINTS...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import duckdb" 2>/dev/null || pip install --quiet duckdb
cargo build --release --locked -p tradepact -p tradepact-data -p tradepact-bench
[ $# -gt 0 ] || set -- 100000000 300000000
for points in "$@"; do
  echo "## The matrix at $points points"
  echo
  target/release/matrix-bench --points "$points" --repeat 3
  echo
done
