#!/usr/bin/env bash
# make fuzz: every fuzz target under libFuzzer (clang, ASan+UBSan) for FUZZ_SECONDS each
# (default 60), installing clang and its runtimes first if need be (FUZZ_CC: another clang). A crash stops the run; its input is left in fuzz/regressions/<target>/ so the
# replay test keeps it once the bug is fixed.
#
# A target of a service, <prefix>_<what>_fuzz.c (fuzz/CMakeLists.txt says the same), is built
# with that service's sources (every .c of its folder but main.c) and what CMake generates for
# it (its embedded openapi.yaml and migrations), from a configure-only CMake tree in
# build/fuzz/cmake, and linked with every engine driver the machine has.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-60}
out=$root/build/fuzz
. "$root/deploy/local/common.sh"
# libFuzzer and the sanitizer runtimes are not part of Debian's clang package but of
# libclang-rt-<version>-dev, which apt leaves out (a Recommends of clang-<version>). Debian
# bookworm's clang is 14, installed as clang-14 (the unversioned `clang` is another package).
apt_install clang-14 libclang-rt-14-dev
cc=${FUZZ_CC:-}
if [ -z "$cc" ]; then
    for c in clang-14 clang; do
        if command -v "$c" >/dev/null; then cc=$c; break; fi
    done
fi
[ -n "$cc" ] || die "no clang on PATH after installing clang-14 (set FUZZ_CC)"
mkdir -p "$out"
# A link that fails later for want of a runtime is a confusing first error: try a trivial
# target now and say what is missing.
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$out/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined -o "$out/probe" "$out/probe.c" 2>"$out/probe.log" ||
    { cat "$out/probe.log" >&2; die "$cc cannot link a libFuzzer target with ASan and UBSan: is libclang-rt-14-dev (or your clang's runtime package) installed?"; }
cflags=(-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$root/lib/include"
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
libs=$(pkg-config --cflags --libs libmicrohttpd libcurl rdkafka jansson)
drivers=$(pkg-config --libs libpq hiredis libmongoc-1.0 2>/dev/null || true)
targets=("$root"/fuzz/*_fuzz.c)
[ -e "${targets[0]}" ] || die "no fuzz targets in fuzz/"

# lib's headers include the generated topic and event names (cmake/Events.cmake).
cmake -DSCHEMA_DIR="$root/schemas/events" -DTOPICS_FILE="$root/deploy/topics.conf" \
    -DOUT="$out/include/polyglot/events.h" -P "$root/cmake/Events.cmake" >/dev/null
cflags+=(-I"$out/include")

# The folder of the service whose PREFIX is $1, or nothing.
service_dir() {
    local list
    for list in "$root"/*-svc/CMakeLists.txt; do
        if grep -Eq "PREFIX[[:space:]]+$1([[:space:]]|\$)" "$list"; then
            dirname "$list"
            return
        fi
    done
}

for src in "${targets[@]}"; do
    name=$(basename "$src" _fuzz.c)
    extra=()
    dir=$(service_dir "${name%%_*}")
    if [ "$name" != "${name%%_*}" ] && [ -n "$dir" ]; then
        svc=$(basename "$dir")
        gen=$out/cmake/$svc/generated
        if [ ! -d "$gen" ]; then
            log "configuring CMake for the generated files of $svc"
            cmake -S "$root" -B "$out/cmake" >/dev/null
        fi
        if [ ! -d "$gen" ]; then
            log "skipping fuzz target '$name': $svc is not built (POLYGLOT_SERVICES)"
            continue
        fi
        for f in "$dir"/*.c "$gen"/*.c; do
            [ "$(basename "$f")" = main.c ] || extra+=("$f")
        done
        # shellcheck disable=SC2206 # the drivers' flags, one word each
        extra+=(-I"$dir" -I"$gen" $drivers)
    fi
    log "building fuzz target '$name'"
    # shellcheck disable=SC2086
    "$cc" "${cflags[@]}" -o "$out/$name" "$src" "${extra[@]}" "$root"/lib/src/*.c $libs -lpthread -lm
    mkdir -p "$out/corpus/$name" "$root/fuzz/regressions/$name"
    seeds=()
    [ -d "$root/fuzz/corpus/$name" ] && seeds+=("$root/fuzz/corpus/$name")
    log "fuzzing '$name' for ${secs}s"
    "$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$root/fuzz/regressions/$name/" "$out/corpus/$name" "${seeds[@]}" \
        2>&1 | tail -n 5
done
log "fuzzing done: no crash in ${#targets[@]} targets"
