#!/usr/bin/env bash
# Install Arize Phoenix (a real OTLP trace backend with a REST API to read spans
# back) into its own virtual environment at <repo>/.backends/phoenix, for the
# integration tests in tests/integration (see tests/integration/conftest.py).
#
# Phoenix is a test-only tool (Elastic-2.0 licence): it is never a dependency of
# the railtracks package, and never installed into the project's own venv.
#
# Idempotent: when the pinned version is already installed and imports, this
# returns at once. Needs only python3 (3.10+) with pip: uv is installed with pip
# when it is not on PATH. Prints one line saying what it did.
set -euo pipefail

PHOENIX_VERSION="20.26.1"

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "${script_dir}/../.." && pwd)"
venv="${repo_root}/.backends/phoenix"
python="${PYTHON:-python3}"

# Written once the installed package has been seen to import: `import phoenix`
# takes ~11 s, too slow for the quick already-installed check.
marker="${venv}/.arize-phoenix-${PHOENIX_VERSION}-verified"

is_installed() {
    # True when the pinned version is installed, was seen to import, and its
    # `phoenix` binary and interpreter are still there and run.
    [[ -f "${marker}" && -x "${venv}/bin/phoenix" && -x "${venv}/bin/python" ]] || return 1
    local version
    version="$("${venv}/bin/python" -c \
        'import importlib.metadata as m; print(m.version("arize-phoenix"))' 2>/dev/null)" || return 1
    [[ "${version}" == "${PHOENIX_VERSION}" ]]
}

if is_installed; then
    echo "install_phoenix: arize-phoenix ${PHOENIX_VERSION} already installed in ${venv}"
    exit 0
fi

mkdir -p "$(dirname -- "${venv}")"
# Serialise concurrent runs (two test sessions starting at once).
exec 9>"${venv}.lock"
flock 9
if is_installed; then
    echo "install_phoenix: arize-phoenix ${PHOENIX_VERSION} already installed in ${venv}"
    exit 0
fi

if command -v uv >/dev/null 2>&1; then
    uv=(uv)
else
    if ! "${python}" -m uv --version >/dev/null 2>&1; then
        "${python}" -m pip install -q --disable-pip-version-check uv
    fi
    uv=("${python}" -m uv)
fi

started=${SECONDS}
# Use the machine's interpreter: never let uv download one (no network but the
# package registries here).
export UV_PYTHON_DOWNLOADS=never
# Trust the platform's certificate store as pip does (uv otherwise bundles its
# own roots, which a TLS-inspecting proxy's CA is not among). Older uv releases
# read UV_NATIVE_TLS instead.
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-true}" UV_NATIVE_TLS="${UV_NATIVE_TLS:-true}"
# A half-finished earlier install is thrown away rather than repaired.
rm -rf -- "${venv}"
"${uv[@]}" venv -q --python "$(command -v "${python}")" "${venv}"
"${uv[@]}" pip install -q --python "${venv}/bin/python" "arize-phoenix==${PHOENIX_VERSION}"

if ! "${venv}/bin/python" -c 'import phoenix'; then
    echo "install_phoenix: arize-phoenix ${PHOENIX_VERSION} installed in ${venv} but does not import" >&2
    exit 1
fi
touch -- "${marker}"
if ! is_installed; then
    echo "install_phoenix: arize-phoenix ${PHOENIX_VERSION} in ${venv} is incomplete" >&2
    exit 1
fi
echo "install_phoenix: installed arize-phoenix ${PHOENIX_VERSION} in ${venv} in $((SECONDS - started)) s"
