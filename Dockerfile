# syntax=docker/dockerfile:1
# riskgate: pre-trade portfolio-margin risk service (gRPC on 50051).
#   docker build -t riskgate .
#   docker run --rm -p 50051:50051 -v $PWD/auth.toml:/etc/riskgate/auth.toml:ro \
#       -e RISKGATE_AUTH_FILE=/etc/riskgate/auth.toml riskgate   # demo data, access control
#   docker run --rm -p 50051:50051 -e RISKGATE_ALLOW_UNAUTHENTICATED=true riskgate --no-demo
# Settings: RISKGATE_* environment variables or a TOML file (--config /path/in/container).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: install the package and its wheels into a virtualenv ------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY riskgate ./riskgate
RUN pip install .

# ---- runtime: slim image, non-root, kernels warmed into the numba cache -------------------
FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN groupadd --system --gid ${UID} riskgate \
    && useradd --system --uid ${UID} --gid riskgate --home-dir /home/riskgate --create-home \
       --shell /usr/sbin/nologin riskgate \
    && mkdir -p /var/cache/riskgate/numba \
    && chown -R riskgate:riskgate /var/cache/riskgate
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/var/cache/riskgate/numba \
    RISKGATE_LISTEN_ADDRESS=0.0.0.0:50051 \
    RISKGATE_METRICS_ADDRESS=0.0.0.0:9464 \
    RISKGATE_LOG_FORMAT=json
USER riskgate
WORKDIR /home/riskgate
# Compile every numba kernel (both margin models) into NUMBA_CACHE_DIR now, so the service
# starts from the cache. numba keys cache entries by CPU: on a host whose CPU differs from
# the build machine's, the kernels recompile once at start-up (health stays NOT_SERVING
# until they have).
RUN python -c "from riskgate.server.app import warm_kernel_cache; warm_kernel_cache()"

EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; ch = grpc.insecure_channel('127.0.0.1:50051'); r = g.HealthStub(ch).Check(h.HealthCheckRequest(service='riskgate.v1.RiskGate'), timeout=2); sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["riskgate", "serve"]
