#!/usr/bin/env bash
# Installs the build toolchain and the C libraries from Debian packages (once; a no-op after).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

apt_install build-essential pkg-config cmake ninja-build git curl ca-certificates \
    libmicrohttpd-dev libpq-dev libhiredis-dev libmongoc-dev libbson-dev \
    libcurl4-openssl-dev librdkafka-dev libjansson-dev check \
    python3-jsonschema python3-venv jq
