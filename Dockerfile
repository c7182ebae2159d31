# syntax=docker/dockerfile:1
# Images of the low-light platform, one Dockerfile, three targets:
#   web         gunicorn + Flask, without TensorFlow (docker build --target web -t lowlight-web .)
#   worker      Celery enhancement worker / beat / trainer on tensorflow-cpu (--target worker)
#   worker-gpu  the same worker on a CUDA-enabled TensorFlow base image (--target worker-gpu)
# Versions come from constraints.txt, the same pins `make install` uses.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG TF_GPU_IMAGE=tensorflow/tensorflow:2.21.0-gpu

# What the web tier imports (web/ plus mirnet.imageio and mirnet.metrics; OpenCV decodes 16-bit PNGs; requests and
# tqdm for the API's client, web/client.py): no tensorflow, no keras.
# tests/deploy/test_dockerfile.py reads this line and checks it against pyproject.toml and the imports of web/.
ARG WEB_REQUIREMENTS="flask flask-limiter sqlalchemy alembic celery[redis] kombu psycopg[binary] boto3 prometheus-client gunicorn numpy pillow opencv-python-headless requests tqdm"
# What the worker needs on top of the web requirements when TensorFlow comes from the base image.
ARG MODEL_REQUIREMENTS="keras"

# ---------------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2
RUN useradd --create-home --uid 10001 lowlight
WORKDIR /app
COPY constraints.txt pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY mirnet ./mirnet
COPY web ./web
COPY worker ./worker
# The sources stay in /app: `python -m web.cli migrate` finds alembic.ini and migrations/ beside the package.
# Editable and --no-deps: each target chooses its own dependencies below.
RUN pip install --no-deps -e . \
    && mkdir -p /app/var /var/lib/lowlight && chown lowlight /app/var /var/lib/lowlight

# ---------------------------------------------------------------------------------------------------------------
FROM base AS web
ARG WEB_REQUIREMENTS
RUN pip install -c constraints.txt ${WEB_REQUIREMENTS} \
    && ! pip show tensorflow tensorflow-cpu keras >/dev/null 2>&1
USER lowlight
ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["python", "-m", "web"]

# ---------------------------------------------------------------------------------------------------------------
FROM base AS worker
# The project's own dependency list: tensorflow-cpu on linux/x86_64.
RUN pip install -c constraints.txt -e .
USER lowlight
CMD ["celery", "-A", "worker.celery_app", "worker", "-Q", "enhance", "--concurrency", "1", "--loglevel", "INFO"]

# ---------------------------------------------------------------------------------------------------------------
# TensorFlow with CUDA and cuDNN comes from the base image; installing the project's dependencies would add
# tensorflow-cpu beside it, so the package goes in with --no-deps plus everything but TensorFlow. The image's
# system Python is the one TensorFlow is installed in (PIP_BREAK_SYSTEM_PACKAGES lets pip add to it).
FROM ${TF_GPU_IMAGE} AS worker-gpu
ARG WEB_REQUIREMENTS
ARG MODEL_REQUIREMENTS
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    PIP_BREAK_SYSTEM_PACKAGES=1
RUN useradd --create-home --uid 10001 lowlight
WORKDIR /app
COPY --from=base /app /app
RUN pip install --no-deps -e . \
    && pip install -c constraints.txt ${WEB_REQUIREMENTS} ${MODEL_REQUIREMENTS} \
    && python -c "import tensorflow as tf; print('tensorflow', tf.__version__)" \
    && mkdir -p /var/lib/lowlight && chown lowlight /app/var /var/lib/lowlight
USER lowlight
CMD ["celery", "-A", "worker.celery_app", "worker", "-Q", "enhance", "--concurrency", "1", "--loglevel", "INFO"]
