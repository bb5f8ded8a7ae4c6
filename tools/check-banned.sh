#!/usr/bin/env bash
# Fails when C sources call a function STYLE.md bans. Usage: tools/check-banned.sh [ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok|gets|atoi|atol|atoll|sscanf)[[:space:]]*\('
files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null ||
    find . -name '*.c' -o -name '*.h' | grep -v '^./build/')
[ -n "$files" ] || { echo "banned_functions: no C files"; exit 0; }
# shellcheck disable=SC2086
if hits=$(grep -nE "$banned" $files | grep -vE '^[^:]+:[0-9]+:\s*(\*|//|/\*)'); then
    echo "banned functions (see STYLE.md; use snprintf, memcpy with a length, strtol):"
    echo "$hits"
    exit 1
fi
echo "banned_functions: $(echo "$files" | wc -l) C files clean"
