# One image for every polyfleet service; compose picks the service with its command
# (python -m services.<name>).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

RUN pip install --no-cache-dir uv \
    && groupadd --system --gid 10001 polyfleet \
    && useradd --system --uid 10001 --gid polyfleet --home-dir /app --shell /usr/sbin/nologin polyfleet

WORKDIR /app

# Dependencies first (cached until the lock file changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project

COPY . .
RUN uv sync --locked --no-dev \
    && mkdir -p /app/config /app/logs /app/var \
    && chown -R polyfleet:polyfleet /app/logs /app/var

USER polyfleet

ENV PF_CONFIG=/app/config/polyfleet.yaml \
    PF_REDIS_URL=redis://redis:6379/0

# Each service's healthcheck (compose overrides the command) is `python -m services.<name> --check`.
CMD ["python", "-m", "services.orchestrator"]
