#!/usr/bin/env bash
# What history costs on disk: 50,040 annual series × 20 years (1,000,800 points) imported
# without a release, then three times as releases that revise every value. After each step the
# data service is stopped and `tradepact verify-store` counts the keys and values; the
# directory's allocated bytes are printed beside them. Needs the release binaries
# (cargo build --release -p tradepact -p tradepact-data). About 15 s.
set -euo pipefail
cd "$(dirname "$0")/.."
B="$PWD/target/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 - <<'PY'
import random
countries = ["USA", "KOR", "JPN", "CHN", "DEU", "FRA", "GBR", "ITA", "CAN", "MEX"]
for rev in range(4):
    random.seed(7)
    with open(f"r{rev}.csv", "w") as f:
        f.write("reporter,partner,flow,kind,product,period,value_usd,source\n")
        for r in countries:
            for p in countries:
                if r == p:
                    continue
                for prod in range(50000 // 90 + 1):
                    for y in range(2000, 2020):
                        v = random.randint(1, 10**9) + rev * 1000
                        f.write(f"{r},{p},export,goods,HS:{100000 + prod * 7},{y},{v},gen\n")
PY
du_b() { python3 -c "import os,sys; print(sum(os.stat(os.path.join(d,f)).st_blocks*512 for d,_,fs in os.walk(sys.argv[1]) for f in fs))" "$1"; }
step() {  # step LABEL [import flags] FILE: import, stop, measure
  label=$1; shift
  "$B/tradepact-data" --listen 127.0.0.1:0 --data-dir store > server.log 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" server.log && break; sleep 0.1; done
  addr=$(grep -o "listening on [0-9.:]*" server.log | awk '{print $3}')
  "$B/tradepact" import --data-service "http://$addr" "$@" > /dev/null
  kill "$pid"; wait "$pid" || true
  echo "$label: $(du_b store) bytes on disk; $("$B/tradepact" verify-store store | tail -1)"
}
step "no release" r0.csv
for rev in 1 2 3; do
  step "release r$rev" --release "r$rev" --release-date "2020-0$rev-01" "r$rev.csv"
done
