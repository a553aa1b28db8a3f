"""``include.destinations.gcs`` through ``GCSHook`` against the GCS stand-in."""

import os
from pathlib import Path

import pytest

from include.destinations import gcs

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(cloud_stack):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook("google_cloud_default")


def test_every_file_is_uploaded_whole_with_the_content_type_of_its_suffix(
    hook, gcs_bucket, storage_client, tmp_path: Path
) -> None:
    files = {}
    for day in range(1, 11):
        path = tmp_path / f"day-{day}.parquet"
        path.write_bytes(bytes([day]) * (day * 10_000))
        files[f"by_day/pickup_date=2020-10-{day:02d}/part.parquet"] = path
    files["profiles/month.json"] = tmp_path / "month.json"
    files["profiles/month.json"].write_text('{"rows": 1}')
    # Past the client's one-request limit (8 MiB): a resumable upload, in chunks of UPLOAD_CHUNK_BYTES.
    files["month/month.parquet"] = tmp_path / "month.parquet"
    files["month/month.parquet"].write_bytes(os.urandom(gcs.UPLOAD_CHUNK_BYTES + 12_345))

    uris = gcs.upload(hook, gcs_bucket, files)

    assert uris == [f"gs://{gcs_bucket}/{name}" for name in files]
    blobs = {blob.name: blob for blob in storage_client.list_blobs(gcs_bucket)}
    assert set(blobs) == set(files)
    for name, path in files.items():
        assert blobs[name].download_as_bytes() == path.read_bytes(), name
        expected_type = "application/json" if name.endswith(".json") else gcs.PARQUET_MIME_TYPE
        assert blobs[name].content_type == expected_type, name


def test_a_file_that_cannot_be_read_fails_the_upload_naming_it(
    hook, gcs_bucket, storage_client, tmp_path: Path
) -> None:
    good = {f"ok/{index}.csv": tmp_path / f"{index}.csv" for index in range(3)}
    for path in good.values():
        path.write_text("a,b\n1,2\n")
    missing = tmp_path / "gone.csv"

    with pytest.raises(FileNotFoundError, match=r"gone\.csv"):
        gcs.upload(hook, gcs_bucket, {**good, "bad/gone.csv": missing})

    assert {blob.name for blob in storage_client.list_blobs(gcs_bucket)} == set(good)
