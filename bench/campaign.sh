#!/usr/bin/env bash
# Power-cut campaign at a large size: for each cache mode, a seeded workload
# runs through a drive over the logwrites filter, then the disk is rebuilt
# from the log at every flush point and at random points between them, with
# random subsets of the unflushed writes dropped, and checked against what
# the mode promises. Prints, per mode: log entries, flush points, crash
# points tried, images checked, writes lost that the mode promised to keep
# (must be 0 except under unsafe), and acknowledged writes lost (allowed),
# both summed over the images checked.
#
#   bench/campaign.sh [REQUESTS] [RANDOM_POINTS] [DROPS_PER_POINT] [IMAGE_MIB] [SEED]
#
# Then the qcow2 workloads (fresh image, over a raw and a qcow2 backing file,
# over an internal snapshot; with zero writes, discards, compressed writes),
# where every rebuilt image also passes `qemu-img check` (leaks allowed). Each
# image costs a qemu-img process, so their size is set apart:
#   QCOW2_REQUESTS (default 150), QCOW2_POINTS (20), QCOW2_DROPS (2)
#
# The test suite runs the same campaign small (PowerCutCampaignTest).
set -euo pipefail
cd "$(dirname -- "$0")/.."
requests=${1:-2000}
points=${2:-100}
drops=${3:-5}
mib=${4:-16}
seed=${5:-$RANDOM$RANDOM}
./mvnw -q -B -o test -Dtest=PowerCutCampaignTest -Dsurefire.failIfNoSpecifiedTests=false \
  -Dcampaign.requests="$requests" -Dcampaign.randomPoints="$points" -Dcampaign.dropsPerPoint="$drops" \
  -Dcampaign.imageBytes=$((mib * 1024 * 1024)) -Dcampaign.seed="$seed" \
  -Dcampaign.qcow2.requests="${QCOW2_REQUESTS:-150}" -Dcampaign.qcow2.randomPoints="${QCOW2_POINTS:-20}" \
  -Dcampaign.qcow2.dropsPerPoint="${QCOW2_DROPS:-2}" \
  -Djunit.jupiter.execution.timeout.default=2h || status=$?
out=target/surefire-reports/io.jblock.filter.logwrites.PowerCutCampaignTest-output.txt
[ -f "$out" ] && grep -E "^power-cut campaign|^(writeback|writethrough|none|directsync|unsafe) " "$out"
exit "${status:-0}"
