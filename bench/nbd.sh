#!/usr/bin/env bash
# NBD benchmark: jblock nbd beside qemu-nbd and nbdkit's file plugin, on the
# same file and cache mode, through fio's nbd engine. Prints a table with
# jblock's ratio to each peer in every row.
#
#   bench/nbd.sh [SECONDS_PER_JOB] [IMAGE_DIR]
#
# NBD_ONLY_4K=1 runs only the two 4k random rows (no 1M rows, no flush rows):
# quick enough to repeat while profiling.
#
# Needs: the built jar (./mvnw -q package -DskipTests), qemu-nbd, nbdkit, fio, python3.
set -euo pipefail
cd "$(dirname -- "$0")/.."
secs=${1:-10}
dir=$(mktemp -d "${2:-/var/tmp}/jblock-bench.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
img="$dir/bench.img"
sock="$dir/nbd.sock"
size=1G
fallocate -l "$size" "$img"
for t in qemu-nbd nbdkit fio python3; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -f target/jblock.jar ] || { echo "build first: ./mvnw -q package -DskipTests" >&2; exit 1; }

start_server() { # name cache
  rm -f "$sock"
  case "$1" in
    jblock)   bin/jblock nbd -t -e 4 -f raw --cache="$2" -k "$sock" "$img" & ;;
    qemu-nbd) qemu-nbd -t -e 4 -f raw --cache="$2" -k "$sock" "$img" & ;;
    nbdkit)   # nbdkit's file plugin has no unsafe mode; its default cache is writeback-like.
              nbdkit -f -U "$sock" file "file=$img" & ;;
  esac
  for _ in $(seq 200); do [ -S "$sock" ] && return 0; sleep 0.05; done
  echo "server $1 did not start" >&2; exit 1
}
stop_server() { kill %1 2>/dev/null || true; wait 2>/dev/null || true; }

# fio job -> "IOPS MB/s"
run_fio() { # rw bs iodepth [extra...]
  local rw=$1 bs=$2 depth=$3; shift 3
  fio --name=b --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw="$rw" --bs="$bs" --iodepth="$depth" \
      --size="$size" --time_based --runtime="$secs" --ramp_time=2 --randseed=7 --output-format=json "$@" 2>/dev/null |
    python3 -c '
import json,sys
text=sys.stdin.read()
j=json.loads(text[text.index("{"):])["jobs"][0]  # fio nbd prints "connected" before its JSON
ops=j["read"]["iops"]+j["write"]["iops"]
bw=(j["read"]["bw_bytes"]+j["write"]["bw_bytes"])/1e6
print(f"{ops:.0f} {bw:.1f}")'
}

declare -A R
jobs_list=("randwrite-4k:randwrite 4k 16" "randread-4k:randread 4k 16" "write-1M:write 1M 4" "read-1M:read 1M 4")
[ "${NBD_ONLY_4K:-0}" = 1 ] && jobs_list=("${jobs_list[@]:0:2}")
for server in jblock qemu-nbd nbdkit; do
  start_server "$server" writeback
  for j in "${jobs_list[@]}"; do
    R["$server/${j%%:*}"]=$(run_fio ${j#*:})
  done
  stop_server
done
# Flush cost: 4k random writes with a FLUSH every 32 writes, unsafe against writeback.
flush_servers=(jblock qemu-nbd)
[ "${NBD_ONLY_4K:-0}" = 1 ] && flush_servers=()
for server in "${flush_servers[@]}"; do
  for cache in writeback unsafe; do
    start_server "$server" "$cache"
    R["$server/randwrite-4k-flush32-$cache"]=$(run_fio randwrite 4k 16 --fsync=32)
    stop_server
  done
done

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }
echo
echo "jblock nbd vs qemu-nbd vs nbdkit file; raw $size on $(df --output=fstype "$dir" | tail -1), cache=writeback unless named; ${secs}s per job; $(nproc) cores"
printf '| %-32s | %-18s | %-18s | %-18s | %-8s | %-8s |\n' "job (fio nbd engine)" "jblock IOPS / MB/s" "qemu-nbd" "nbdkit file" "j/qemu" "j/nbdkit"
printf '|%s|%s|%s|%s|%s|%s|\n' "----------------------------------" "--------------------" "--------------------" "--------------------" "----------" "----------"
for j in "${jobs_list[@]}"; do
  k=${j%%:*}
  set -- ${R[jblock/$k]}; jo=$1; jb=$2
  set -- ${R[qemu-nbd/$k]}; qo=$1; qb=$2
  set -- ${R[nbdkit/$k]}; no=$1; nb=$2
  printf '| %-32s | %-18s | %-18s | %-18s | %-8s | %-8s |\n' "$k iodepth ${j##* }" "$jo / $jb" "$qo / $qb" "$no / $nb" "$(ratio "$jo" "$qo")" "$(ratio "$jo" "$no")"
done
[ "${NBD_ONLY_4K:-0}" = 1 ] && exit 0
for cache in writeback unsafe; do
  k="randwrite-4k-flush32-$cache"
  set -- ${R[jblock/$k]}; jo=$1; jb=$2
  set -- ${R[qemu-nbd/$k]}; qo=$1; qb=$2
  printf '| %-32s | %-18s | %-18s | %-18s | %-8s | %-8s |\n' "$k" "$jo / $jb" "$qo / $qb" "-" "$(ratio "$jo" "$qo")" "-"
done
set -- ${R[jblock/randwrite-4k-flush32-unsafe]}; u=$1
set -- ${R[jblock/randwrite-4k-flush32-writeback]}; w=$1
set -- ${R[jblock/randwrite-4k]}; n=$1
echo
echo "jblock: unsafe with a flush every 32 writes runs at $(ratio "$u" "$w")x writeback with the same flushes, and $(ratio "$u" "$n")x writeback with no flushes at all."
