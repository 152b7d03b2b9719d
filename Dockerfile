# syntax=docker/dockerfile:1

# --- builder: install the package and its dependencies into a self-contained venv ---
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY . .
# A regular (non-editable) install: the runtime stage needs the venv only, not /src.
RUN pip install .


# --- runtime: the venv, the migrations, a non-root user ---
FROM python:3.11-slim AS runtime

# PROMETHEUS_MULTIPROC_DIR: every uvicorn worker writes its samples there and /metrics sums them.
# It must be empty when the workers start: compose mounts a fresh tmpfs over it.
# ENVIRONMENT=production: SECRET_KEY (32+ characters) is then required.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHANHAI_ALEMBIC_INI=/app/alembic.ini \
    PROMETHEUS_MULTIPROC_DIR=/run/shanhai/metrics \
    ENVIRONMENT=production

RUN groupadd --system --gid 10001 shanhai \
    && useradd --system --uid 10001 --gid shanhai --home-dir /app --shell /usr/sbin/nologin shanhai \
    && mkdir -p /run/shanhai/metrics \
    && chown -R shanhai:shanhai /run/shanhai

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY alembic.ini ./alembic.ini
COPY alembic ./alembic

USER shanhai:shanhai
EXPOSE 8000

# Migrations are a separate step (`shanhai migrate`, the `migrate` service in compose.yaml), so
# that several API containers never race to migrate.
CMD ["shanhai", "serve", "--no-migrate", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
