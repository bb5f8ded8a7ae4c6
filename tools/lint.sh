#!/usr/bin/env bash
# make lint: clang-tidy over every C file of the debug build (compile_commands.json), with
# .clang-tidy. Fails when a check that .clang-tidy's WarningsAsErrors names finds something;
# the other checks only warn.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
db=$root/build/debug
. "$root/deploy/local/common.sh"
apt_install clang-tidy
[ -f "$db/compile_commands.json" ] || die "run 'make build' first"
cd "$root"
# xargs exits non-zero when any clang-tidy did.
git ls-files -z '*.c' | xargs -0 -P "$(nproc)" -n 4 clang-tidy -p "$db" --quiet ||
    die "clang-tidy found errors (above)"
log "lint: no clang-tidy errors"
