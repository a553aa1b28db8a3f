"""local_stack.bigquery_dataset, which compose's bigquery-init runs, against the real BigQuery stand-in."""

from __future__ import annotations

import uuid

import pytest

from local_stack.bigquery_dataset import create_dataset
from local_stack.stack import LOCAL_PROJECT, Stack


@pytest.mark.integration
def test_creates_the_dataset_once_then_leaves_it(cloud_stack: Stack, bigquery_client) -> None:
    endpoint = f"http://127.0.0.1:{cloud_stack.bigquery_port}"
    name = f"test_{uuid.uuid4().hex[:12]}"
    assert create_dataset(endpoint, LOCAL_PROJECT, name, "US") is True
    assert create_dataset(endpoint, LOCAL_PROJECT, name, "US") is False
    assert bigquery_client.get_dataset(name).dataset_id == name
