# syntax=docker/dockerfile:1
# riskgate: pre-trade portfolio-margin risk service (gRPC on 50051, metrics on 9464).
#   docker build -t riskgate .
#   docker run --rm -p 50051:50051 -p 9464:9464 -v $PWD/auth.toml:/etc/riskgate/auth.toml:ro \
#       -e RISKGATE_AUTH_FILE=/etc/riskgate/auth.toml riskgate   # demo data, access control
#   docker run --rm -p 50051:50051 -p 9464:9464 -e RISKGATE_ALLOW_UNAUTHENTICATED=true riskgate
# Settings: RISKGATE_* environment variables or a TOML file (--config /path/in/container);
# every setting: examples/config/riskgate.toml. Keep state across restarts with a volume:
#   -v riskgate-data:/var/lib/riskgate -e RISKGATE_DATA_DIR=/var/lib/riskgate
# tests/integration/test_dockerfile_steps.py runs these steps outside a container engine.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: install the package and its wheels into a virtualenv ------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY riskgate ./riskgate
# constraints.txt pins every package the image installs
RUN pip install -c constraints.txt .

# ---- runtime: slim image, non-root, kernels warmed into the numba cache -------------------
FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN groupadd --system --gid ${UID} riskgate \
    && useradd --system --uid ${UID} --gid riskgate --home-dir /home/riskgate --create-home \
       --shell /usr/sbin/nologin riskgate \
    && mkdir -p /var/cache/riskgate/numba /var/lib/riskgate \
    && chown -R riskgate:riskgate /var/cache/riskgate /var/lib/riskgate
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
# gRPC health of the address the service listens on (RISKGATE_LISTEN_ADDRESS or the
# --config file's listen_address; a wildcard host is probed on loopback). Plaintext: with
# TLS on, add --tls-ca (and --tls-cert/--tls-key for mutual TLS) or probe from outside.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["riskgate", "health", "--quiet"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["riskgate", "serve"]
