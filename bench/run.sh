#!/usr/bin/env bash
# The whole benchmark in one command: jblock beside the device limit (fio on
# the same file), qemu-img bench, qemu-nbd / nbdkit, qemu-img convert and
# qemu-img info, on this machine, in one run. Prints one table; every row has
# a ratio, jblock / peer for rates and peer / jblock for times and memory, so
# above 1 always means jblock does better.
#
#   bench/run.sh [--quick] [IMAGE_DIR]
#
# --quick: smaller images, fewer requests, 2 s NBD jobs (a smoke run, ~3 min).
# The full run takes about 15 minutes on 2 cores.
# Needs: the built jar (./mvnw -q -B package -DskipTests), qemu-img, qemu-nbd,
# nbdkit, fio, python3. A row jblock cannot run yet (qcow2 writes, convert)
# says "not available: <why>" and the run goes on.
set -uo pipefail
cd "$(dirname -- "$0")/.."
quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
base=${1:-/var/tmp}
for t in qemu-img qemu-nbd nbdkit fio python3; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
[ -f target/jblock.jar ] || { echo "build first: ./mvnw -q -B package -DskipTests" >&2; exit 1; }
dir=$(mktemp -d "$base/jblock-run.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
J=bin/jblock

if [ $quick = 1 ]; then
  size_mb=256; scale=10; fio_secs=2; nbd_secs=2; info_runs=5
else
  size_mb=1024; scale=1; fio_secs=5; nbd_secs=6; info_runs=20
fi
size=$((size_mb << 20))
rows=()   # "section|row|jblock|peer|peer name|ratio"

row() { rows+=("$1|$2|$3|$4|$5|$6"); printf '  %-10s %-58s %s\n' "$1" "$2" "${6}" >&2; }
div() { python3 -c "import sys
a,b=float(sys.argv[1]),float(sys.argv[2])
print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }

# ---------------------------------------------------------------- images
raw="$dir/r.raw"
echo "preparing a ${size_mb} MiB raw image (written once, so no row pays for allocation)..." >&2
dd if=/dev/urandom of="$raw" bs=1M count="$size_mb" status=none conv=fsync
fresh_qcow2() { # path prealloc
  rm -f "$1"
  if [ "$2" = metadata ]; then qemu-img create -q -f qcow2 -o preallocation=metadata "$1" "$size"
  else qemu-img create -q -f qcow2 "$1" "$size"; fi
}

# ---------------------------------------------------------------- img bench
# "TOOL ARGS..." -> IOPS on stdout, or "ERR: message"
bench_iops() {
  local tool=$1; shift
  local out err rc count
  count=$(python3 -c "import sys; a=sys.argv[1:]; print(a[a.index('-c')+1])" "$@")
  if [ "$tool" = jblock ]; then out=$($J img bench "$@" 2>"$dir/err"); rc=$?
  else out=$(qemu-img bench "$@" 2>"$dir/err"); rc=$?; fi
  if [ $rc -ne 0 ]; then
    err=$(grep -v '^WARNING\|^  ' "$dir/err" | head -1)
    echo "ERR: ${err:-exit $rc}"; return
  fi
  python3 -c "import re,sys
m=re.search(r'Run completed in ([0-9.]+) seconds', sys.argv[1]); c=int(sys.argv[2])
print(f'{c/max(float(m.group(1)),1e-4):.0f}')" "$out" "$count"
}

# One img bench row: jblock first (a row it cannot run yet costs no qemu-img run), each tool on a fresh
# image where the format allocates.
bench_row() { # section label fmt image-kind args...
  local section=$1 label=$2 fmt=$3 kind=$4; shift 4
  local img j q
  case "$kind" in
    raw) img=$raw ;;
    qcow2|qcow2-meta) img="$dir/q.qcow2" ;;
    qcow2-full) img="$dir/qfull.qcow2" ;;   # every cluster allocated (reads only: shared by both tools)
  esac
  [ "$kind" = qcow2 ] && fresh_qcow2 "$img" off
  [ "$kind" = qcow2-meta ] && fresh_qcow2 "$img" metadata
  j=$(bench_iops jblock -f "$fmt" "$@" "$img")
  if [[ $j == ERR:* ]]; then
    # "jblock img: Could not open 'x': why" -> "why"
    local why=${j#ERR: }
    why=${why#*: }; why=${why#Could not open *: }
    case "$why" in
      *"can only be opened read-only"*) why="not available: qcow2 writes not available yet" ;;
      *"not available"*) why="not available: ${why:0:70}" ;;
      *) why="failed: ${why:0:70}" ;;
    esac
    row "$section" "$label" "-" "-" "qemu-img" "$why"
    return
  fi
  [ "$kind" = qcow2 ] && fresh_qcow2 "$img" off
  [ "$kind" = qcow2-meta ] && fresh_qcow2 "$img" metadata
  q=$(bench_iops qemu -f "$fmt" "$@" "$img")
  if [[ $q == ERR:* ]]; then
    row "$section" "$label" "$j" "-" "qemu-img" "peer failed: ${q#ERR: }"
  else
    row "$section" "$label" "$j" "$q" "qemu-img" "$(div "$j" "$q")"
  fi
}

# Requests per row, sized so one run takes about a second here (writethrough and
# directsync: 6000, so JVM warm-up, ~150 ms of a 1500-request run, is not what the row measures).
n_buffered=$((100000 / scale)); n_direct=$((40000 / scale)); n_sync=$((6000 / scale)); n_big=$((size_mb / 2))
count_for() { # cache
  case "$1" in writethrough|directsync) echo $n_sync ;; none) echo $n_direct ;; *) echo $n_buffered ;; esac
}
step=65536   # qemu-img bench is sequential: a 64 KiB stride spreads the 4 KiB requests over the image

echo "img bench (4 KiB writes, depth 32, stride 64 KiB)..." >&2
caches="writeback unsafe none writethrough directsync"
[ $quick = 1 ] && caches="writeback none directsync"
for kind in raw qcow2 qcow2-meta; do
  fmt=raw; [ "$kind" != raw ] && fmt=qcow2
  for cache in $caches; do
    for aio in threads io_uring; do
      c=$(count_for "$cache")
      bench_row "img bench" "$kind w 4k $cache $aio" "$fmt" "$kind" -w -t "$cache" -i "$aio" -d 32 -s 4k -S $step -c "$c"
      bench_row "img bench" "$kind w 4k $cache $aio flush/32" "$fmt" "$kind" -w -t "$cache" -i "$aio" -d 32 -s 4k -S $step -c "$c" --flush-interval=32
    done
  done
done
for cache in writeback none; do
  for aio in threads io_uring; do
    c=$(count_for "$cache")
    bench_row "img bench" "raw r 4k $cache $aio" raw raw -t "$cache" -i "$aio" -d 32 -s 4k -S $step -c "$c"
  done
done
qemu-img convert -f raw -O qcow2 "$raw" "$dir/qfull.qcow2"
for cache in writeback none; do
  for aio in threads io_uring; do
    c=$(count_for "$cache")
    bench_row "img bench" "qcow2 r 4k $cache $aio (allocated)" qcow2 qcow2-full -t "$cache" -i "$aio" -d 32 -s 4k -S $step -c "$c"
  done
done
rm -f "$dir/qfull.qcow2"
bench_row "img bench" "raw w 1M none io_uring depth 4" raw raw -w -t none -i io_uring -d 4 -s 1M -c $n_big
for kind in qcow2 qcow2-meta; do
  for aio in threads io_uring; do
    bench_row "img bench" "$kind w 1M none $aio depth 4" qcow2 "$kind" -w -t none -i "$aio" -d 4 -s 1M -c $n_big
  done
done

# ---------------------------------------------------------------- device limit (fio on the same file)
echo "device limit (fio on the same file, ${fio_secs}s per job)..." >&2
fio_iops() { # args...
  fio --name=d --filename="$raw" --size="$size" --time_based --runtime="$fio_secs" --randseed=7 \
      --output-format=json "$@" 2>/dev/null | python3 -c '
import json, sys
t = sys.stdin.read()
j = json.loads(t[t.index("{"):])["jobs"][0]
print("%.0f" % (j["read"]["iops"] + j["write"]["iops"]))'
}
device_row() { # label "fio args" jblock-bench-args...
  local label=$1 fargs=$2; shift 2
  local f j
  f=$(fio_iops $fargs)
  j=$(bench_iops jblock -f raw "$@" "$raw")
  if [[ $j == ERR:* ]]; then row device "$label" "-" "$f" fio "not available: ${j#ERR: }"
  else row device "$label" "$j" "$f" fio "$(div "$j" "$f")"; fi
}
device_row "4k randwrite buffered, fdatasync every write (jblock: writethrough, depth 1)" \
  "--rw=randwrite --bs=4k --ioengine=psync --fdatasync=1" -w -t writethrough -d 1 -s 4k -S $step -c $n_sync
device_row "4k randwrite buffered, fdatasync every 32 (jblock: writeback, flush/32)" \
  "--rw=randwrite --bs=4k --ioengine=psync --fdatasync=32" -w -t writeback -d 32 -s 4k -S $step -c $n_buffered --flush-interval=32
device_row "4k randwrite O_DIRECT io_uring depth 32 (jblock: none, io_uring)" \
  "--rw=randwrite --bs=4k --direct=1 --ioengine=io_uring --iodepth=32" -w -t none -i io_uring -d 32 -s 4k -S $step -c $n_direct
device_row "1M seq write O_DIRECT io_uring depth 4 (jblock: none, io_uring)" \
  "--rw=write --bs=1M --direct=1 --ioengine=io_uring --iodepth=4" -w -t none -i io_uring -d 4 -s 1M -c $n_big

# ---------------------------------------------------------------- NBD (bench/nbd.sh)
echo "nbd (bench/nbd.sh, ${nbd_secs}s per job)..." >&2
nbd_out=$(bench/nbd.sh "$nbd_secs" "$dir" 2>&1)
while IFS= read -r line; do
  # | job | jblock IOPS / MB/s | qemu-nbd | nbdkit | j/qemu | j/nbdkit |
  IFS='|' read -r _ job jb qb nb rq rn _ <<<"$line"
  job=$(echo $job); rq=$(echo $rq); rn=$(echo $rn)
  [ -z "$job" ] || [ "$job" = "job (fio nbd engine)" ] || [[ $job == -* ]] && continue
  row nbd "$job" "$(echo $jb)" "$(echo $qb)" qemu-nbd "$rq"
  [ "$rn" != "-" ] && row nbd "$job" "$(echo $jb)" "$(echo $nb)" "nbdkit file" "$rn"
done < <(grep '^| ' <<<"$nbd_out")
flush_note=$(grep '^jblock: unsafe' <<<"$nbd_out")

# ---------------------------------------------------------------- daemon RSS under load
echo "daemon memory under load..." >&2
sock="$dir/rss.sock"
rss_under_load() { # server -> peak RSS in MiB
  rm -f "$sock"
  case "$1" in
    jblock)   $J nbd -t -e 4 -f raw --cache=writeback -k "$sock" "$raw" & ;;
    qemu-nbd) qemu-nbd -t -e 4 -f raw --cache=writeback -k "$sock" "$raw" & ;;
  esac
  local pid=$!
  for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
  fio --name=m --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw=randrw --bs=64k --iodepth=16 \
      --size="$size" --time_based --runtime="$fio_secs" >/dev/null 2>&1
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null)
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  echo $(( ${hwm:-0} / 1024 ))
}
jr=$(rss_under_load jblock); qr=$(rss_under_load qemu-nbd)
row memory "nbd server peak RSS (MiB), 64k randrw depth 16" "$jr" "$qr" qemu-nbd "$(div "$qr" "$jr")"

# ---------------------------------------------------------------- convert
echo "convert..." >&2
half="$dir/half.raw"
python3 - "$half" "$size" <<'EOF'
import os, sys
path, size = sys.argv[1], int(sys.argv[2])
chunk = 1 << 20
with open(path, "wb") as f:
    f.truncate(size)
    for off in range(0, size, 2 * chunk):  # every other MiB holds data: half full
        f.seek(off); f.write(os.urandom(chunk))
EOF
wall() { # command... -> seconds
  local s e
  s=$(date +%s%N); "$@" >/dev/null 2>"$dir/err"; local rc=$?; e=$(date +%s%N)
  [ $rc -eq 0 ] && python3 -c "print(f'{($e-$s)/1e9:.3f}')" || echo "ERR: $(head -1 "$dir/err")"
}
convert_row() { # label src-fmt src dst-fmt
  local label=$1 sf=$2 src=$3 df=$4 q j
  rm -f "$dir/out"; q=$(wall qemu-img convert -f "$sf" -O "$df" "$src" "$dir/out")
  rm -f "$dir/out"; j=$(wall $J img convert -f "$sf" -O "$df" "$src" "$dir/out")
  # A fast copy must be a right one: QEMU compares jblock's target with the source.
  if [[ $j != ERR:* ]] && ! qemu-img compare -q -f "$sf" -F "$df" "$src" "$dir/out" 2>"$dir/err"; then
    j="ERR: target differs from the source: $(head -1 "$dir/err")"
  fi
  if [[ $j == ERR:* ]]; then
    case "$j" in *"not available"*) j="convert not available yet" ;; *) j="failed: ${j#ERR: }" ;; esac
    row convert "$label" "-" "$q s" qemu-img "not available: $j"
  else row convert "$label (s)" "$j" "$q" qemu-img "$(div "$q" "$j")"; fi
}
convert_row "${size_mb} MiB half-full raw -> qcow2" raw "$half" qcow2
qemu-img convert -f raw -O qcow2 "$half" "$dir/half.qcow2"
convert_row "${size_mb} MiB half-full qcow2 -> raw" qcow2 "$dir/half.qcow2" raw

# ---------------------------------------------------------------- start-up
echo "start-up (img info, $info_runs runs each)..." >&2
info_ms() { # tool
  local s e i
  s=$(date +%s%N)
  for i in $(seq "$info_runs"); do
    if [ "$1" = jblock ]; then $J img info "$dir/half.qcow2" >/dev/null; else qemu-img info "$dir/half.qcow2" >/dev/null; fi
  done
  e=$(date +%s%N)
  python3 -c "print(f'{($e-$s)/1e6/$info_runs:.1f}')"
}
cpu_ms() { # tool -> mean user+sys CPU ms of one img info
  local total=0 i t
  for i in $(seq "$info_runs"); do
    if [ "$1" = jblock ]; then t=$( { /usr/bin/time -f "%U %S" $J img info "$dir/half.qcow2" >/dev/null; } 2>&1 | tail -1)
    else t=$( { /usr/bin/time -f "%U %S" qemu-img info "$dir/half.qcow2" >/dev/null; } 2>&1 | tail -1); fi
    total=$(python3 -c "import sys; print($total + sum(map(float, sys.argv[1].split())))" "$t")
  done
  python3 -c "print(f'{$total*1000/$info_runs:.1f}')"
}
jm=$(info_ms jblock); qm=$(info_ms qemu)
aot="no AOT cache"; [ -f target/jblock.aot ] && [ target/jblock.aot -nt target/jblock.jar ] && aot="AOT cache"
row start-up "img info on a qcow2, mean wall ms ($aot)" "$jm" "$qm" qemu-img "$(div "$qm" "$jm")"
if [ -x /usr/bin/time ]; then
  jc=$(cpu_ms jblock); qc=$(cpu_ms qemu)
  row start-up "img info on a qcow2, mean CPU ms user+sys ($aot)" "$jc" "$qc" qemu-img "$(div "$qc" "$jc")"
fi

# ---------------------------------------------------------------- table
echo
echo "jblock $(git rev-parse --short HEAD 2>/dev/null) on $(nproc) cores, $(df --output=fstype "$dir" | tail -1), $(date -u +%F)$([ $quick = 1 ] && echo ', --quick')"
echo "ratio: jblock/peer for rates (IOPS), peer/jblock for times and memory; above 1 = jblock better"
printf '| %-9s | %-72s | %-10s | %-10s | %-11s | %-8s |\n' section row jblock peer "peer is" ratio
printf '|%s|%s|%s|%s|%s|%s|\n' -----------  $(printf -- '-%.0s' {1..74}) ------------ ------------ ------------- ----------
for r in "${rows[@]}"; do
  IFS='|' read -r s l j p n x <<<"$r"
  printf '| %-9s | %-72s | %-10s | %-10s | %-11s | %-8s |\n' "$s" "$l" "$j" "$p" "$n" "$x"
done
[ -n "$flush_note" ] && { echo; echo "$flush_note"; }
