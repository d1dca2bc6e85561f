# RNN text classifier: FastAPI service on CPU torch, with the trained model in model_artifacts/.
#
#   docker build -t rnn-text-classifier .        (or: docker compose up --build)
#
# torch comes from the PyTorch CPU wheel index by default (plain PyPI torch is a multi-GB CUDA
# build). To use another index: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
# To build without that index: put the torch wheel in wheels/ (pip download --no-deps -d wheels
# torch==<pinned version>); a torch wheel found there is used instead of the index.

# --- builder: a venv holding the dependencies, and a wheel of the project ---------------------
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code change reuses this (large) layer.
COPY pyproject.toml ./
COPY wheels/ /wheels/
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n'); open('/tmp/torch.txt', 'w').write(''.join(d + '\n' for d in deps if d.startswith('torch')))" \
 && set -- /wheels/torch-*.whl \
 && if [ -e "$1" ]; then \
        echo "torch: from wheels/ ($*)"; \
        pip install --no-cache-dir --no-index --no-deps --find-links /wheels -r /tmp/torch.txt; \
    else \
        echo "torch: from $TORCH_INDEX_URL"; \
        pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" -r /tmp/torch.txt; \
    fi \
 && pip install --no-cache-dir --find-links /wheels -r /tmp/requirements.txt \
 && python -c "import torch; print('torch', torch.__version__)"

COPY README.md ./
COPY app/ app/
COPY training/ training/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# The model, readable by everyone whatever the modes in the build context (the service runs as
# non-root; training may leave files 0600).
COPY model_artifacts/ /model_artifacts/
RUN chmod -R a+rX,go-w /model_artifacts

# --- runtime: the venv, the project and the model; runs as a non-root user --------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=1 \
    MODEL_DIR=/app/model_artifacts

RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist

WORKDIR /app
# Owned by root: the service only reads its model. Mount another one and set MODEL_DIR to serve it.
COPY --from=builder /model_artifacts/ /app/model_artifacts/

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "app"]
