# RNN text classifier: FastAPI service on ONNX Runtime (no torch), with the trained model in
# model_artifacts/.
#
#   docker build -t rnn-text-classifier .        (or: docker compose up --build)
#
# The serving install needs no torch; for ENGINE=torch or a GPU, build on this image and add the
# torch extra (README: Docker).

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

# Dependencies first, from pyproject.toml alone, so a code change reuses this layer.
COPY pyproject.toml ./
# The s3 extra too (obstore, 16 MiB): the image serves repositories in object storage
# (deploy/k8s/repository) as well as on disk.
RUN python -c "import tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; deps = project['dependencies'] + project['optional-dependencies']['s3']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && python -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"

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
    GRPC_PORT=8001 \
    WORKERS=1

RUN groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist

WORKDIR /app
# Owned by root: the service only reads its model (MODEL_DIR's default, model_artifacts, is this
# one). Mount another one and set MODEL_DIR, or a repository and MODEL_REPOSITORY, to serve those.
COPY --from=builder /model_artifacts/ /app/model_artifacts/

USER 10001:10001
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "app"]
