#!/usr/bin/env bash
# clang-tidy over every C file of the debug build (compile_commands.json), with .clang-tidy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
db=$root/build/debug
command -v clang-tidy >/dev/null || { "$root/deploy/local/deps.sh"; apt-get install -y -q clang-tidy >/dev/null; }
[ -f "$db/compile_commands.json" ] || { echo "run 'make build' first" >&2; exit 1; }
cd "$root"
git ls-files '*.c' | xargs -P "$(nproc)" -n 4 clang-tidy -p "$db" --quiet
