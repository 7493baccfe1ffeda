#!/usr/bin/env bash
# Fail early, with the numbers, when a disk cannot hold a fresh set-up.
#
#   tools/check_free_space.sh MIN_GIB DIR [DIR ...]
#
# A fresh `.venv` takes about 7.5 GiB: torch 2.14.1 is the CUDA build and pulls its CUDA runtime wheels
# (about 4 GiB with triton) even when only the CPU is used; pip also downloads and builds in the temporary folder.
# Without this check a full disk shows up minutes later as "OSError: [Errno 28] No space left on device" in
# the middle of pip's output.
set -euo pipefail

if [[ $# -lt 2 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 MIN_GIB DIR [DIR ...]  (MIN_GIB a whole number of GiB)" >&2
    exit 2
fi
min_gib=$1
shift

status=0
for dir in "$@"; do
    if [[ ! -d $dir ]]; then
        echo "error: $dir is not a folder; cannot check its free space" >&2
        status=1
        continue
    fi
    free_kib=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
    free_gib=$(awk -v k="$free_kib" 'BEGIN {printf "%.1f", k / 1048576}')
    if (( free_kib < min_gib * 1048576 )); then
        echo "error: only ${free_gib} GiB free on the disk holding $dir; a fresh set-up needs about" \
             "${min_gib} GiB there (.venv alone is 7.5 GiB: torch 2.14.1 installs its CUDA wheels even for" \
             "CPU use). Free some space, or run with SETUP_MIN_FREE_GIB=0 to try anyway." >&2
        status=1
    fi
done
exit $status
