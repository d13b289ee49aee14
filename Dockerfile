# tideflow server image: the API, UI and services of `tideflow server start`, or a worker.
# Build: docker build -t tideflow .      Run a team server: docker compose up (docker-compose.yml)
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user owns the home; the process never runs as root.
RUN groupadd --system --gid 10001 tideflow \
    && useradd --system --uid 10001 --gid tideflow --create-home --home-dir /home/tideflow tideflow

WORKDIR /opt/tideflow
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /opt/tideflow/src

USER tideflow
WORKDIR /home/tideflow
ENV TIDEFLOW_HOME=/home/tideflow/.tideflow \
    TIDEFLOW_SERVER_PORT=4200
EXPOSE 4200

# /api/health needs no key; it answers 503 when the database cannot be reached.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:4200/api/health', timeout=2).status != 200)"]

# On 0.0.0.0 API keys are required: set TIDEFLOW_SERVER_ADMIN_KEY (or run `tideflow server
# bootstrap` once against the database) and TIDEFLOW_DATABASE_URL (PostgreSQL for replicas).
CMD ["tideflow", "server", "start", "--host", "0.0.0.0", "--port", "4200"]
