# The local stand-ins of docker compose's profile local-cloud, from their own Python environment
# (requirements-emulators.txt), apart from Airflow's:
#   gcs-emulator       gcp-storage-emulator, objects under /data/gcs/.cloudstorage/BUCKET/OBJECT
#   bigquery-emulator  bqemulator via local_stack/bigquery_emulator.py, reading gs:// from that folder
#   tlc-mirror         local_stack/mirror.py: builds the samples of data/tlc plus constructed months
#                      into /mirror, then serves it with local_stack/tlc_server.py
# Build context: the repository root (docker compose sets it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app
COPY requirements-emulators.txt .
RUN pip install --no-cache-dir -r requirements-emulators.txt

# local_stack finds the samples at ../data/tlc, so they keep the repo's layout.
# The mirror builds its months from the families' declaration (include/source/families.py).
COPY include/ include/
COPY local_stack/ local_stack/
COPY data/tlc/ data/tlc/

# A non-root user owning the data folders; a new named volume mounted on one copies its owner.
RUN useradd --system --create-home --uid 10001 emulator \
    && mkdir -p /data/gcs /data/bigquery /mirror \
    && chown -R emulator /data /mirror
USER emulator

EXPOSE 9023 9050 8765
