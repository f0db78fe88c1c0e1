# CaseBridge API: migrations, then uvicorn, as an unprivileged user.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CASEBRIDGE_ENV=prod \
    CASEBRIDGE_HOST=0.0.0.0 \
    CASEBRIDGE_PORT=8000 \
    CASEBRIDGE_DATA_DIR=/var/lib/casebridge

WORKDIR /srv/casebridge
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY policies ./policies
RUN pip install --upgrade pip && pip install -e . \
    && useradd --system --uid 10001 --home-dir /var/lib/casebridge --create-home casebridge \
    && chmod 700 /var/lib/casebridge

USER casebridge
EXPOSE 8000
# In prod the service refuses to start without CASEBRIDGE_DATABASE_URL and
# CASEBRIDGE_KEYRING_PATH (mount the keyring from your secret store, mode 0600).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["sh", "-c", "casebridge db upgrade && exec casebridge serve"]
