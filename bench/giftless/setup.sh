#!/usr/bin/env bash
# Installs giftless (a Git LFS server, from PyPI) into a virtual environment for
# `dits-bench remote`. Idempotent: re-running it on an existing venv only re-checks the install.
#
#   bash bench/giftless/setup.sh [VENV]      # default: <workspace>/target/bench-venv
#   BENCH_VENV=DIR bash bench/giftless/setup.sh
#
# The package list is explicit because giftless' own metadata leaves out several of its
# run-time imports; pyjwt is held below 2.10 for giftless' JWT code.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/../.." && pwd)"
venv="${1:-${BENCH_VENV:-$workspace/target/bench-venv}}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv $venv" >&2
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/pip" install giftless pyyaml python-dotenv figcan flask-classful flask-marshmallow marshmallow webargs 'pyjwt<2.10' cachetools python-dateutil typing-extensions requests cryptography

# Fail here, not in the middle of a benchmark, if the server cannot even be imported.
PYTHONWARNINGS=ignore::FutureWarning "$venv/bin/python" -c 'import giftless.wsgi_entrypoint' >/dev/null
test -x "$venv/bin/flask"
echo "giftless ready: $venv/bin/flask --app giftless.wsgi_entrypoint run" >&2
