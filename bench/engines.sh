#!/usr/bin/env bash
# The I/O engines side by side: `jblock img bench` and `qemu-img bench` with
# -i threads and -i io_uring, cache=none and writeback, 4 KiB requests at
# depth 32 (stride 64 KiB), reads and writes, on one raw file. Each figure is
# the median of RUNS runs; ratios are jblock / qemu-img for the same engine,
# and jblock io_uring / jblock threads.
#
#   bench/engines.sh [RUNS] [IMAGE_DIR]
set -uo pipefail
cd "$(dirname -- "$0")/.."
runs=${1:-3}
dir=$(mktemp -d "${2:-/var/tmp}/jblock-engines.XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
[ -f target/jblock.jar ] || { echo "build first: ./mvnw -q -B package -DskipTests" >&2; exit 1; }
img="$dir/r.raw"
dd if=/dev/urandom of="$img" bs=1M count=1024 status=none conv=fsync

# tool args... -> median IOPS over $runs runs
median_iops() {
  local tool=$1; shift
  local c i out all=()
  c=$(python3 -c "import sys; a=sys.argv[1:]; print(a[a.index('-c')+1])" "$@")
  for i in $(seq "$runs"); do
    if [ "$tool" = jblock ]; then out=$(bin/jblock img bench "$@" "$img" 2>&1); else out=$(qemu-img bench "$@" "$img" 2>&1); fi
    all+=("$(python3 -c "import re,sys
m=re.search(r'Run completed in ([0-9.]+) seconds', sys.argv[1])
print(int(int(sys.argv[2])/max(float(m.group(1)),1e-4)) if m else 0)" "$out" "$c")")
  done
  printf '%s\n' "${all[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}
div() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }

echo "4 KiB, depth 32, stride 64 KiB, raw 1 GiB on $(df --output=fstype "$dir" | tail -1), $(nproc) cores; median of $runs; IOPS"
printf '| %-22s | %-9s | %-9s | %-9s | %-9s | %-9s | %-9s | %-13s |\n' test "jb thr" "qemu thr" "jb uring" "qemu uring" "j/q thr" "j/q uring" "jb uring/thr"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------------------ ----------- ----------- ----------- ------------ ----------- ----------- ---------------
for rw in read write; do
  for cache in none writeback; do
    w=(); [ $rw = write ] && w=(-w)
    c=40000; [ $cache = writeback ] && c=100000
    args=(-f raw "${w[@]}" -t $cache -d 32 -s 4k -S 64k -c $c)
    jt=$(median_iops jblock "${args[@]}" -i threads); qt=$(median_iops qemu "${args[@]}" -i threads)
    ju=$(median_iops jblock "${args[@]}" -i io_uring); qu=$(median_iops qemu "${args[@]}" -i io_uring)
    printf '| %-22s | %-9s | %-9s | %-9s | %-9s | %-9s | %-9s | %-13s |\n' "$rw cache=$cache" "$jt" "$qt" "$ju" "$qu" \
      "$(div "$jt" "$qt")" "$(div "$ju" "$qu")" "$(div "$ju" "$jt")"
  done
done
