#!/usr/bin/env bash
# make format: clang-format (.clang-format) over every C file in git, in place.
# make check-format (--check): changes nothing; lists each file clang-format would change and
# fails when there is one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/deploy/local/common.sh"
apt_install clang-format
cd "$root"
if [ "${1:-}" = --check ]; then
    bad=()
    while IFS= read -r f; do
        clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done < <(git ls-files '*.c' '*.h')
    if [ ${#bad[@]} -gt 0 ]; then
        printf '%s\n' "${bad[@]}"
        die "${#bad[@]} C files are not formatted: run 'make format'"
    fi
    log "check-format: every C file is formatted"
else
    git ls-files -z '*.c' '*.h' | xargs -0 clang-format -i
fi
