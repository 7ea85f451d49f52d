#!/usr/bin/env bash
# make run: start the server on the embedded default config with generated dev keys.
set -euo pipefail
bin=${1:?idmint binary}
exec "$bin" serve --config "$(dirname "$0")/../examples/dev.conf"
