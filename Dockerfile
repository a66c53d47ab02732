# One image for every flowkeeper service. By default it is lean (the api, engine,
# scheduler and notify services and the SDK); `--build-arg EXTRAS=taxi` adds pandas,
# pyarrow, scikit-learn, XGBoost and MLflow for the workers that run the taxi flow and
# the MLflow server (docker-compose builds both).
FROM python:3.11-slim

# extras of the flowkeeper package to install, comma-separated (e.g. "taxi"); empty: none
ARG EXTRAS=""

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLOWKEEPER_HOME=/data \
    MLFLOW_DISABLE_TELEMETRY=true

# libgomp: the OpenMP runtime that the xgboost wheel links against, so only the taxi image
RUN case ",$EXTRAS," in *,taxi,*) \
      apt-get update \
      && apt-get install -y --no-install-recommends libgomp1 \
      && rm -rf /var/lib/apt/lists/* ;; \
    esac

WORKDIR /app
COPY pyproject.toml README.md ./
COPY flows ./flows
COPY automations ./automations
COPY notifiers ./notifiers
COPY services ./services
RUN pip install ".${EXTRAS:+[$EXTRAS]}"

RUN useradd --create-home --uid 1000 flowkeeper \
 && mkdir -p /data /mlflow \
 && chown flowkeeper:flowkeeper /data /mlflow
USER flowkeeper
VOLUME ["/data"]

ENTRYPOINT ["flowkeeper"]
CMD ["--help"]
