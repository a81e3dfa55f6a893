#!/usr/bin/env bash
# Install what the observability-stack tests (tests/stack) need beyond the
# Python test venv:
#   1. Prometheus and promtool (Debian package `prometheus`): a live Prometheus
#      that scrapes a real railtracks run, and offline PromQL checks.
#   2. The npm packages @grafana/schema (pinned to the grafana/grafana image in
#      compose/compose.yaml) and ts-json-schema-generator, from the package.json
#      and package-lock.json in tests/stack/grafana_schema, into
#      <repo>/.backends/grafana-schema.
#   3. JSON Schemas generated there from those TypeScript types: the dashboard
#      (dashboard.schema.json), the options of each panel type the dashboards
#      use (panel.<type>.options.schema.json) and the Tempo query
#      (tempo.query.schema.json).
#
# Idempotent: a step already done is skipped. Prints one line per step.
# Needs root (apt-get), node and npm. Run: bash tests/backends/install_stack.sh
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "${script_dir}/../.." && pwd)"
npm_src="${repo_root}/tests/stack/grafana_schema"
dest="${repo_root}/.backends/grafana-schema"
types="${dest}/node_modules/@grafana/schema/dist/types"
started=${SECONDS}

# --- 1. Prometheus + promtool -------------------------------------------------
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "install_stack: prometheus already installed ($(prometheus --version 2>&1 | head -n 1))"
else
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; then
        # The package lists may be missing or stale on a fresh machine.
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends prometheus >/dev/null
    fi
    echo "install_stack: installed $(prometheus --version 2>&1 | head -n 1)"
fi

# --- 2. npm packages ----------------------------------------------------------
mkdir -p -- "${dest}"
exec 9>"${dest}.lock"  # serialise concurrent runs
flock 9

installed_matches_lock() {
    # True when node_modules holds exactly what the committed lock file pins.
    [[ -f "${dest}/node_modules/.package-lock.json" ]] || return 1
    cmp -s "${npm_src}/package.json" "${dest}/package.json" || return 1
    cmp -s "${npm_src}/package-lock.json" "${dest}/package-lock.json" || return 1
    [[ -x "${dest}/node_modules/.bin/ts-json-schema-generator" && -d "${types}" ]]
}

grafana_schema_version="$(node -p "require('${npm_src}/package.json').dependencies['@grafana/schema']")"
if installed_matches_lock; then
    echo "install_stack: @grafana/schema ${grafana_schema_version} and ts-json-schema-generator already installed in ${dest}"
else
    cp -- "${npm_src}/package.json" "${npm_src}/package-lock.json" "${dest}/"
    rm -rf -- "${dest}/node_modules" "${dest}"/*.schema.json
    (cd -- "${dest}" && npm ci --silent --no-audit --no-fund --ignore-scripts >/dev/null)
    echo "install_stack: installed @grafana/schema ${grafana_schema_version} and ts-json-schema-generator into ${dest}"
fi

# --- 3. JSON Schemas ----------------------------------------------------------
# name|type|declaration file (relative to @grafana/schema's dist/types)|expose
# (expose "none" inlines every type: the Tempo query reaches DataQuery through
# two re-exports, which the default mode reports as a clash of definitions)
schemas=(
    "dashboard.schema.json|Dashboard|raw/dashboard/x/types.gen.d.ts|export"
    "panel.timeseries.options.schema.json|Options|raw/composable/timeseries/panelcfg/x/types.gen.d.ts|export"
    "panel.stat.options.schema.json|Options|raw/composable/stat/panelcfg/x/types.gen.d.ts|export"
    "panel.table.options.schema.json|Options|raw/composable/table/panelcfg/x/types.gen.d.ts|export"
    "panel.bargauge.options.schema.json|Options|raw/composable/bargauge/panelcfg/x/types.gen.d.ts|export"
    "panel.text.options.schema.json|Options|raw/composable/text/panelcfg/x/types.gen.d.ts|export"
    "tempo.query.schema.json|TempoQuery|raw/composable/tempo/dataquery/x/types.gen.d.ts|none"
)
missing=()
for entry in "${schemas[@]}"; do
    IFS='|' read -r name _ _ _ <<<"${entry}"
    [[ -s "${dest}/${name}" ]] || missing+=("${entry}")
done
if ((${#missing[@]} == 0)); then
    echo "install_stack: ${#schemas[@]} JSON Schemas already generated in ${dest}"
else
    # The generator type-checks the declarations; skipLibCheck keeps it to the
    # files named here.
    cat >"${dest}/tsconfig.json" <<'EOF'
{
  "compilerOptions": {
    "strict": true,
    "skipLibCheck": true,
    "noEmit": true,
    "target": "es2022",
    "module": "esnext",
    "moduleResolution": "bundler"
  }
}
EOF
    for entry in "${missing[@]}"; do
        IFS='|' read -r name type_name decl expose <<<"${entry}"
        (cd -- "${dest}" && node_modules/.bin/ts-json-schema-generator \
            --tsconfig tsconfig.json --expose "${expose}" \
            --path "${types}/${decl}" --type "${type_name}" \
            --out "${name}.tmp")
        mv -- "${dest}/${name}.tmp" "${dest}/${name}"
    done
    printf '{"@grafana/schema": "%s"}\n' "${grafana_schema_version}" >"${dest}/versions.json"
    echo "install_stack: generated ${#missing[@]} JSON Schemas from @grafana/schema ${grafana_schema_version} in ${dest}"
fi
echo "install_stack: done in $((SECONDS - started)) s"
