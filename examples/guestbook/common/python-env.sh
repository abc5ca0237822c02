#!/bin/sh
# The role's Python environment, as Azure's Python cloud service templates
# build it: a startup task creates a virtualenv from requirements.txt, and
# the entry point runs the role inside it.
#
#   ./python-env.sh setup        startup task (taskType="simple")
#   ./python-env.sh run SCRIPT   entry point: exec SCRIPT with the venv's python
#
# PYTHON_ENV is the `PythonEnv` local storage resource (the csdef maps it
# with a RoleInstanceValue xpath). It has cleanOnRoleRecycle="false", so the
# venv survives reboots and restarts: it is keyed by a hash of
# requirements.txt and rebuilt only when that file changes (an upgrade that
# changes requirements builds a new one; the old ones are removed). pip keeps
# its download cache there too. PYTHON (default: python3 on PATH) picks the
# interpreter.
set -eu

: "${PYTHON_ENV:?PYTHON_ENV is not set: map the PythonEnv local resource in the csdef}"
python="${PYTHON:-python3}"
key=$(sha256sum requirements.txt | cut -c1-16)
venv="$PYTHON_ENV/venv-$key"

case "${1:-}" in
setup)
    if [ -f "$venv/.complete" ]; then
        echo "python environment $venv is current (requirements.txt $key)"
        exit 0
    fi
    if ! command -v "$python" >/dev/null 2>&1; then
        echo "error: $python not found on PATH: install python3 and python3-venv on this host" >&2
        exit 1
    fi
    if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        echo "error: $python has no venv/ensurepip module: install python3-venv on this host" >&2
        exit 1
    fi
    # A venv holds absolute paths, so it is built where it will stay; the
    # marker written last says it is complete (a half-built one is redone).
    rm -rf "$venv"
    started=$(date +%s)
    echo "building python environment $venv from requirements.txt ($key)"
    "$python" -m venv "$venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$venv/bin/python" -m pip install --quiet \
        --cache-dir "$PYTHON_ENV/pip-cache" --requirement requirements.txt
    touch "$venv/.complete"
    for old in "$PYTHON_ENV"/venv-*; do
        [ "$old" = "$venv" ] || rm -rf "$old"
    done
    echo "python environment ready in $(($(date +%s) - started)) s"
    ;;
run)
    shift
    [ $# -ge 1 ] || { echo "usage: $0 run SCRIPT [ARGS...]" >&2; exit 2; }
    if [ ! -f "$venv/.complete" ]; then
        echo "error: no python environment at $venv: the startup task \`./python-env.sh setup\` did not run" >&2
        exit 1
    fi
    # The approot is read-only and shared: no bytecode files next to the sources.
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 exec "$venv/bin/python" "$@"
    ;;
*)
    echo "usage: $0 setup | run SCRIPT [ARGS...]" >&2
    exit 2
    ;;
esac
