# The DAGs' runtime: the official Airflow image of the version pinned in requirements.txt, extended
# as the Airflow docs recommend (https://airflow.apache.org/docs/docker-stack/build.html), with this
# repository's code baked in. docker-compose.yaml builds it; tests/deploy checks the versions match.
#
#   docker build -t nyc-taxi-airflow:3.3.2 .
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}
ARG AIRFLOW_VERSION

# Installed as the airflow user (the image's default), pinning Airflow itself so no requirement can
# move it to another version.
USER airflow
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt

# dbt and its adapters in an environment of their own (requirements-dbt.txt says why); the DAG
# taxi_warehouse_models runs this dbt through Cosmos.
COPY requirements-dbt.txt /requirements-dbt.txt
RUN python -m venv /opt/airflow/dbt-venv \
    && /opt/airflow/dbt-venv/bin/pip install --no-cache-dir -r /requirements-dbt.txt
ENV NYC_TAXI_DBT_EXECUTABLE=/opt/airflow/dbt-venv/bin/dbt
# Cosmos reports usage over the network unless told not to.
ENV AIRFLOW__COSMOS__ENABLE_TELEMETRY=False

# The code, baked in for production; docker compose mounts the same folders over these for
# development. Only these folders are copied: no .env, key or local state can reach the image.
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
# The dbt manifest the DAG renders its tasks from, made at build time: dbt never runs at parse time.
COPY --chown=airflow:0 scripts/dbt-parse.sh /opt/airflow/scripts/dbt-parse.sh
RUN /opt/airflow/scripts/dbt-parse.sh /opt/airflow/dbt-venv/bin/dbt

# The DAGs import include.* from the project root.
ENV PYTHONPATH=/opt/airflow
# Arrow's allocator for the monthly streams: jemalloc returns what a finished batch freed, where
# pyarrow's default (mimalloc) keeps it per thread; measured in bench/ (bench/README.md), a
# 7-million-row month then grows a task's memory by a few MB instead of tens.
ENV ARROW_DEFAULT_MEMORY_POOL=jemalloc
