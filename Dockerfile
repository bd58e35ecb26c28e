# syntax=docker/dockerfile:1
# The StudyBuddy image: one image for every line of the Procfile. The default command is the
# `web` line; the worker, scheduler and release (migrations) override it (deploy/terraform).
# Never built on the development machine (no Docker engine there): see deploy/README.md for
# what `make iac-check` verifies instead.

# Pinned by version tag (Python 3.11, Debian 12, glibc 2.36); add the digest
# (python:3.11.14-slim-bookworm@sha256:...) where the registry is reachable to resolve it.
FROM python:3.11.14-slim-bookworm AS base

FROM base AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Every package pinned with its hashes, wheels only: nothing is compiled in the image, and
# `make iac-check` proves a Linux wheel exists for each. --no-deps keeps pip to the lock;
# `pip check` then proves the lock is complete.
COPY requirements/lock.txt requirements/lock.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r requirements/lock.txt \
    && /opt/venv/bin/pip check

COPY alembic.ini ./
COPY migrations/ migrations/
COPY protocol/ protocol/
COPY server/ server/
# The JavaScript SDK, served by every node at /sdk/ for the web app at /app/ (ADR 0016).
COPY clients/js/studybuddy.js clients/js/studybuddy.js
COPY clients/js/studybuddy.d.ts clients/js/studybuddy.d.ts
# Byte-compile now: the root file system is read-only at run time.
RUN /opt/venv/bin/python -m compileall -q /opt/venv protocol server migrations


FROM base AS runtime

LABEL org.opencontainers.image.title="studybuddy" \
      org.opencontainers.image.description="WebSocket-first study-group chat backend" \
      org.opencontainers.image.licenses="MIT"

# An unprivileged user with a fixed uid/gid (the EFS access point maps uploads to it).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
COPY --from=build /src /app

WORKDIR /app
# MEDIA_DIR's default (./media) must be writable; in a cluster it is shared storage.
RUN mkdir -p /app/media && chown app:app /app/media

ARG PORT=8000
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=${PORT}

USER 10001:10001
EXPOSE ${PORT}

# Liveness only; readiness (/health/ready) is the load balancer's. Worker and scheduler
# containers have no HTTP port: run them with --no-healthcheck (ECS ignores this one).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=3)"]

# The Procfile's web line; exec so that SIGTERM reaches the node (it drains its sockets).
CMD ["sh", "-c", "exec python -m server.serve --host 0.0.0.0 --port $PORT"]
