# PayGate for Python: the gateway in a small image that runs as a non-root user (docs/deploy.md).
#
#   docker build -t paygate-mcp .
#   docker run -p 3402:3402 -v paygate-data:/data -e PAYGATE_ADMIN_KEY=... paygate-mcp \
#       wrap --remote-url https://mcp.example.com/mcp
#
# The image holds the gateway only. To wrap a stdio MCP server, build FROM this image and install the
# server in it (docs/deploy.md, "Your MCP server in the image").
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/paygate \
    && /opt/paygate/bin/pip install --no-compile . \
    && /opt/paygate/bin/python -m compileall -q /opt/paygate/lib

FROM ${BASE}
# One unprivileged user owns the state directory; nothing else in the image is writable by it.
RUN groupadd --system --gid 10001 paygate \
    && useradd --system --uid 10001 --gid paygate --home-dir /data --shell /usr/sbin/nologin paygate \
    && mkdir -p /data \
    && chown paygate:paygate /data
COPY --from=build /opt/paygate /opt/paygate
ENV PATH=/opt/paygate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PAYGATE_HOST=0.0.0.0 \
    PAYGATE_PORT=3402 \
    PAYGATE_STATE_FILE=/data/paygate.db \
    PAYGATE_LOG_FORMAT=json
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3402
# /ready is 200 only once the backend answered its handshake, and 503 while draining or in maintenance.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os,sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PAYGATE_PORT', '3402') + '/ready', timeout=2).status != 200)"]
ENTRYPOINT ["paygate-mcp"]
CMD ["--help"]
