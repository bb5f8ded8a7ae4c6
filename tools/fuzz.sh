#!/usr/bin/env bash
# make fuzz: every fuzz target under libFuzzer (clang, ASan+UBSan) for FUZZ_SECONDS each
# (default 60). A crash stops the run; its input is left in fuzz/regressions/<target>/ so the
# replay test keeps it once the bug is fixed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-60}
out=$root/build/fuzz
. "$root/deploy/local/common.sh"
apt_install clang
mkdir -p "$out"
cflags=(-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/lib/include"
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
libs=$(pkg-config --cflags --libs libmicrohttpd libcurl rdkafka jansson)
targets=("$root"/fuzz/*_fuzz.c)
[ -e "${targets[0]}" ] || die "no fuzz targets in fuzz/"
for src in "${targets[@]}"; do
    name=$(basename "$src" _fuzz.c)
    log "building fuzz target '$name'"
    # shellcheck disable=SC2086
    clang "${cflags[@]}" -o "$out/$name" "$src" "$root"/lib/src/*.c $libs -lpthread -lm
    mkdir -p "$out/corpus/$name" "$root/fuzz/regressions/$name"
    seeds=()
    [ -d "$root/fuzz/corpus/$name" ] && seeds+=("$root/fuzz/corpus/$name")
    log "fuzzing '$name' for ${secs}s"
    "$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$root/fuzz/regressions/$name/" "$out/corpus/$name" "${seeds[@]}" \
        2>&1 | tail -n 5
done
log "fuzzing done: no crash in ${#targets[@]} targets"
