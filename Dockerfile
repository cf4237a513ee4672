# syntax=docker/dockerfile:1
# The ArkRelay gateway image: `arkrelay run` with the workspace plugins it drives real
# daemons with. compose.yaml runs it next to those daemons on regtest;
# docs/operators/install.md is the walk-through.

# Both stages use one Python image: the virtualenv built in the first is copied into the
# second and keeps pointing at /usr/local/bin/python3.11.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
# The uv that wrote uv.lock, so `--locked` reads the lock the way it was written.
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1
# The workspace packages the gateway runs. arkrelay-wallet stays out: it is the reference
# wallet and `arkrelay demo`, a client of the gateway. tests/ops/test_containers.py fails
# when a workspace package is neither listed here nor excluded there.
ARG ARKRELAY_PACKAGES="arkrelay-core arkrelay-nostr arkrelay-arkd arkrelay-lnd arkrelay-tapd arkrelay-settlement"
WORKDIR /src
COPY . .
# Third-party packages come from uv.lock with their hashes; the workspace packages are
# built into wheels from this source and installed without resolving anything again.
RUN --mount=type=cache,target=/root/.cache/uv \
    set -eu; \
    package_args=""; \
    for package in ${ARKRELAY_PACKAGES}; do package_args="${package_args} --package ${package}"; done; \
    uv export --quiet --locked --no-dev --no-emit-workspace ${package_args} \
        --output-file /tmp/requirements.txt; \
    for package in ${ARKRELAY_PACKAGES}; do uv build --wheel --package "${package}" --out-dir /wheels; done; \
    uv venv --python /usr/local/bin/python3 /opt/arkrelay; \
    uv pip install --python /opt/arkrelay/bin/python --require-hashes --no-deps --requirement /tmp/requirements.txt; \
    uv pip install --python /opt/arkrelay/bin/python --no-deps /wheels/*.whl; \
    uv pip check --python /opt/arkrelay/bin/python

FROM ${PYTHON_IMAGE} AS runtime
# pg_dump and pg_restore for `arkrelay db backup` and `db restore`. They must be at least
# as new as the server, so compose.yaml runs PostgreSQL 15, the major this Debian ships.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 arkrelay \
    && useradd --system --uid 10001 --gid arkrelay --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin arkrelay \
    && mkdir -p /data /etc/arkrelay \
    && chown arkrelay:arkrelay /data \
    && chmod 0700 /data
COPY --from=build /opt/arkrelay /opt/arkrelay
# ARKRELAY_CONFIG lets `docker compose exec gateway arkrelay db current` (and every other
# command taking --config) find the mounted config without repeating it.
ENV PATH=/opt/arkrelay/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARKRELAY_CONFIG=/etc/arkrelay/arkrelay.toml
# data_dir: the service key, the endpoint's event store, the admin audit log (and the
# SQLite database when no PostgreSQL is configured). An empty named volume mounted here
# takes this directory's owner, so the unprivileged user can write to it.
VOLUME ["/data"]
WORKDIR /data
# The relay endpoint ([transport.endpoint]) and the HTTP API ([http]).
EXPOSE 7447 8080
USER arkrelay
# /ready answers 503 while the database, a transport or a backend is unreachable; urlopen
# raises on that (and on a refused connection), which exits 1: unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ready', timeout=4)"]
ENTRYPOINT ["arkrelay"]
CMD ["run", "--config", "/etc/arkrelay/arkrelay.toml"]
