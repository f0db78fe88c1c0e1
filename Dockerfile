# syntax=docker/dockerfile:1
# CaseBridge API image: the wheel built from this checkout, its dependencies from the lock file
# (requirements/runtime.txt, pinned with hashes), run as uid 10001 in `prod`. docs/deploy.md says
# how to run it: the database URL, the keyring as a secret, the agreements, the data volume.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: dependencies into a venv, then the wheel (migrations and policies as package data) --
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/casebridge
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements/runtime.txt requirements/runtime.txt
RUN /opt/casebridge/bin/pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml setup.py README.md ./
COPY app app
COPY migrations migrations
COPY policies policies
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
    && /opt/casebridge/bin/pip install --no-deps /dist/casebridge-*.whl \
    && /opt/casebridge/bin/python -m pip uninstall --yes --quiet pip setuptools

# -- runtime: the venv only; no compiler, no pip, no sources ---------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="CaseBridge" \
      org.opencontainers.image.description="Information sharing for multi-agency prevention networks" \
      org.opencontainers.image.licenses="Apache-2.0"
# prod by default: the service refuses to start without CASEBRIDGE_DATABASE_URL and a keyring
# (CASEBRIDGE_KEYRING_PATH, e.g. a secret at /run/secrets/keyring.json, or CASEBRIDGE_KEYRING_JSON).
# Agreements: mount your network's folder on /etc/casebridge/policies (the image ships it empty).
ENV PATH=/opt/casebridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CASEBRIDGE_ENV=prod \
    CASEBRIDGE_HOST=0.0.0.0 \
    CASEBRIDGE_PORT=8000 \
    CASEBRIDGE_DATA_DIR=/var/lib/casebridge \
    CASEBRIDGE_POLICIES_DIR=/etc/casebridge/policies
RUN groupadd --system --gid 10001 casebridge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/casebridge --no-create-home \
       --shell /usr/sbin/nologin casebridge \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/casebridge \
    && install -d -o root -g root -m 0755 /etc/casebridge/policies \
    && python -m pip uninstall --yes --quiet pip setuptools wheel
COPY --from=build /opt/casebridge /opt/casebridge
# The SQLite database (if used), the erasure ledger (<data dir>/erasures.log) and the demo's
# files live here: keep it on durable storage, and back it up with the database.
VOLUME /var/lib/casebridge
WORKDIR /var/lib/casebridge
USER 10001:10001
EXPOSE 8000
# SIGTERM drains and stops within CASEBRIDGE_SHUTDOWN_TIMEOUT_SECONDS (20): stop with `docker stop -t 40`.
STOPSIGNAL SIGTERM
# Probes the port the service is configured with (CASEBRIDGE_PORT), on loopback.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('CASEBRIDGE_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]
# Migrations first (they take a lock: several containers may start together), then the server.
CMD ["sh", "-c", "casebridge db upgrade && exec casebridge serve"]
