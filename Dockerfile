# One image for every flowkeeper service (api, scheduler, worker) and the MLflow server.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLOWKEEPER_HOME=/data \
    MLFLOW_DISABLE_TELEMETRY=true

# libgomp: OpenMP runtime that the xgboost wheel links against
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY flows ./flows
COPY automations ./automations
COPY notifiers ./notifiers
COPY services ./services
RUN pip install .

RUN useradd --create-home --uid 1000 flowkeeper \
 && mkdir -p /data /mlflow \
 && chown flowkeeper:flowkeeper /data /mlflow
USER flowkeeper
VOLUME ["/data"]

ENTRYPOINT ["flowkeeper"]
CMD ["--help"]
