# Slim image: the bridge, its mappings, and nothing to compile.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BRIDGE_MAPPINGS_DIR=/app/mappings PORT=8000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY mappings ./mappings
RUN pip install . && useradd --create-home --uid 10001 bridge

USER bridge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os;urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/healthz')"
# The same image runs every process type: `docker run IMAGE bridge worker`, `... bridge clock`.
CMD ["bridge", "web"]
