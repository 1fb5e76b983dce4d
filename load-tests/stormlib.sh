# Sourced by the storm scripts (cpustorm.sh, holdprofile.sh, memstorm.sh): one storm without peers
# started in the background.
# start_storm <scenario> <outdir> <release-dir-with-hospital-load> <server-bin> [storm args...]
# Returns once the set-up is done, with LP the tool's pid and PID the hospital server's; the
# release comes 3 s later (--lead-ms). The tool's output is in <outdir>.log.
start_storm() {
  local sc=$1 out=$2 r=$3 bin=$4
  shift 4
  mkdir -p "$out"
  "$r/hospital-load" storm --scenario "$sc" --server-bin "$bin" --no-peers "$@" --out "$out" > "$out.log" 2>&1 &
  LP=$!
  until grep -q "setup:" "$out.log" 2>/dev/null; do
    sleep 0.05
    kill -0 $LP 2>/dev/null || { cat "$out.log"; exit 1; }
  done
  PID=$(grep -o "pid [0-9]*" "$out.log" | head -1 | cut -d' ' -f2)
}
