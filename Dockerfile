# Slim image: the bridge (with its mapping schemas and default mappings inside the package), nothing to compile.
FROM python:3.11-slim

# BRIDGE_MAPPINGS_DIR is left unset: the packaged defaults apply until an operator mounts a folder of their own
# TOML files (e.g. `-v ./mappings:/app/mappings`, read as ./mappings; or set BRIDGE_MAPPINGS_DIR to the mount).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
RUN pip install . && rm -rf bridge && useradd --create-home --uid 10001 bridge

USER bridge
EXPOSE 8000
# `bridge health` finds which process runs in the container and checks what fits it: /healthz for web and
# serve, the RQ worker's heartbeat for worker, the clock's heartbeat for clock.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["bridge", "health"]
# The same image runs every process type: `docker run IMAGE bridge worker`, `... bridge clock`.
CMD ["bridge", "web"]
