#!/bin/bash
# (docs/benchmarks.md, stop 49.) A storm's server instructions per attempt, counted by valgrind's
# callgrind, and the /healthz ceiling's on the same server: what an attempt costs beyond a bare
# request, in user-space instructions (the kernel's part is not counted). Unlike CPU time, the
# count does not move with the host's hour, so an A/B of two builds is one run each.
# usage: instrstorm.sh <sold-out|everyone-wins> <outdir> <release-dir-with-hospital-load> [server-bin [storm args...]]
# The storm is smaller than the real one (the server runs some 50 times slower under callgrind):
# 2,000 patients; sold-out on 4 doctors x 5 places, everyone-wins on 20 doctors x 100 places.
set -euo pipefail
SC=$1; OUT=$2; R=$3; BIN=$(realpath "${4:-$R/hospital}")
shift $(( $# < 4 ? $# : 4 ))
case $SC in
  sold-out) SHAPE=(--patients 2000 --doctors 4 --slots 5) ;;
  everyone-wins) SHAPE=(--patients 2000 --doctors 20 --slots 100) ;;
  *) echo "instrstorm.sh: sold-out or everyone-wins, not $SC" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
# The server under callgrind, instrumenting nothing until the tool turns it on for each storm
# (`hospital-load storm --callgrind`); every dump goes to callgrind.out.<pid>.<n>.
cat > "$OUT/under-callgrind" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --instr-atstart=no --dump-instr=no --callgrind-out-file=$OUT/callgrind.out.%p "$BIN" "\$@"
WRAP
chmod +x "$OUT/under-callgrind"
# The connections of each storm are opened 20 s before it: the server's accepts are not counted.
"$R/hospital-load" storm --scenario "$SC" "${SHAPE[@]}" --server-bin "$OUT/under-callgrind" --no-peers --ceiling \
  --callgrind --pretouch-mib 0 --lead-ms 20000 "$@" --out "$OUT" > "$OUT.log" 2>&1
python3 "$(dirname "$0")/instrstorm.py" "$OUT"
