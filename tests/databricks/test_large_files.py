"""Large files through the official SDK, unchanged: multipart upload through
pre-signed part URLs (files of 50 MiB or more in databricks-sdk 0.156) and
pre-signed download URLs (`create-download-url`, which the SDK asks for
before every download and falls back from to the Files API).

The session's double refuses single-request uploads over 4 MiB
(`--max-upload-bytes`), so a large upload that arrives intact went through
the multipart path: the SDK's fallback to a single request would get 413.
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from databricks.sdk.errors import AlreadyExists, NotFound, ResourceAlreadyExists

from dbx_double import TOKEN, client, unique, workspace  # noqa: F401 - fixtures

VOLUME = "/Volumes/main/demo/landing"
MiB = 1024 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def payload(size: int, seed: int) -> bytes:
    """Deterministic, incompressible bytes (fast: one C call)."""
    return random.Random(seed).randbytes(size)


def digest(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def expire_in(seconds: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_sixty_mib_upload_is_multipart_and_reads_back_identical(client, unique):
    data = payload(60 * MiB + 12345, seed=20261123)
    path = f"{VOLUME}/large-{unique}/blob.bin"
    client.files.upload(path, io.BytesIO(data), overwrite=True)

    assert client.files.get_metadata(path).content_length == len(data)
    got = client.files.download(path).contents.read()
    assert len(got) == len(data)
    assert digest(got) == digest(data)
    # Staged parts never show in the volume.
    assert [e.name for e in client.files.list_directory_contents(f"{VOLUME}/large-{unique}")] == ["blob.bin"]


def test_single_thread_multipart_batches_part_urls(client, unique):
    # use_parallel=False asks for several part URLs per request (ceil(sqrt(parts))).
    data = payload(55 * MiB + 3, seed=55)
    path = f"{VOLUME}/large-{unique}/serial.bin"
    client.files.upload(path, io.BytesIO(data), overwrite=True, use_parallel=False)
    assert digest(client.files.download(path).contents.read()) == digest(data)


def test_upload_from_file_and_parallel_download_to_file(client, unique, tmp_path):
    data = payload(52 * MiB + 7, seed=7)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    path = f"{VOLUME}/large-{unique}/from-file.bin"
    client.files.upload_from(path, str(src), overwrite=True)

    dst = tmp_path / "dst.bin"
    client.files.download_to(path, str(dst), use_parallel=True, parallelism=4)
    assert digest(dst.read_bytes()) == digest(data)


def test_multipart_upload_without_overwrite_conflicts(client, unique):
    path = f"{VOLUME}/large-{unique}/once.bin"
    first = payload(50 * MiB, seed=1)
    client.files.upload(path, io.BytesIO(first), overwrite=False)
    with pytest.raises((AlreadyExists, ResourceAlreadyExists)):
        client.files.upload(path, io.BytesIO(payload(50 * MiB, seed=2)), overwrite=False)
    assert digest(client.files.download(path).contents.read()) == digest(first)


def test_presigned_protocol_shapes_abort_and_expiry(workspace, unique):
    host = workspace.host
    path = f"{VOLUME}/raw-{unique}/x.bin"
    r = requests.post(f"{host}/api/2.0/fs/files{path}", params={"action": "initiate-upload"}, headers=AUTH)
    assert r.status_code == 200, r.text
    token = r.json()["multipart_upload"]["session_token"]

    r = requests.post(f"{host}/api/2.0/fs/create-upload-part-urls", headers=AUTH, json={
        "path": path, "session_token": token, "start_part_number": 1, "count": 2,
        "expire_time": expire_in(3600)})
    assert r.status_code == 200, r.text
    urls = r.json()["upload_part_urls"]
    assert [u["part_number"] for u in urls] == [1, 2]

    # Pre-signed: no bearer token; answers with the part's ETag.
    put = requests.put(urls[0]["url"], data=b"a" * 10)
    assert put.status_code == 200 and put.headers["ETag"]
    put2 = requests.put(urls[1]["url"], data=b"b" * 10)

    # Every part but the last must be at least 5 MiB: completion refuses.
    r = requests.post(f"{host}/api/2.0/fs/files{path}", headers=AUTH,
                      params={"action": "complete-upload", "upload_type": "multipart", "session_token": token},
                      json={"parts": [{"part_number": 1, "etag": put.headers["ETag"]},
                                      {"part_number": 2, "etag": put2.headers["ETag"]}]})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    r = requests.post(f"{host}/api/2.0/fs/create-abort-upload-url", headers=AUTH, json={
        "path": path, "session_token": token, "expire_time": expire_in(3600)})
    assert r.status_code == 200, r.text
    abort = r.json()["abort_upload_url"]
    assert requests.delete(abort["url"]).status_code == 200
    # The session is gone: its part URLs and completion fail.
    assert requests.put(urls[0]["url"], data=b"a").status_code == 404
    r = requests.post(f"{host}/api/2.0/fs/files{path}", headers=AUTH,
                      params={"action": "complete-upload", "upload_type": "multipart", "session_token": token},
                      json={"parts": [{"part_number": 1, "etag": put.headers["ETag"]}]})
    assert r.status_code == 404
    with pytest.raises(NotFound):
        from databricks.sdk import WorkspaceClient
        WorkspaceClient(host=host, token=TOKEN).files.get_metadata(path)

    # An expired URL answers the way cloud storage does, which the SDK recognises.
    r = requests.post(f"{host}/api/2.0/fs/files{path}", params={"action": "initiate-upload"}, headers=AUTH)
    token = r.json()["multipart_upload"]["session_token"]
    r = requests.post(f"{host}/api/2.0/fs/create-upload-part-urls", headers=AUTH, json={
        "path": path, "session_token": token, "start_part_number": 1, "count": 1,
        "expire_time": expire_in(1)})
    url = r.json()["upload_part_urls"][0]["url"]
    time.sleep(2.1)
    expired = requests.put(url, data=b"x")
    assert expired.status_code == 403
    assert b"<Code>AccessDenied</Code>" in expired.content and b"Request has expired" in expired.content


def test_create_download_url(workspace, client, unique):
    path = f"{VOLUME}/dl-{unique}/f.bin"
    client.files.upload(path, io.BytesIO(b"0123456789"), overwrite=True)
    r = requests.post(f"{workspace.host}/api/2.0/fs/create-download-url", headers=AUTH,
                      params={"path": path, "expire_time": expire_in(600)})
    assert r.status_code == 200, r.text
    body = r.json()
    got = requests.get(body["url"], headers={"Range": "bytes=3-5"})
    assert got.status_code == 206 and got.content == b"345"
    assert requests.get(body["url"]).content == b"0123456789"
    missing = requests.post(f"{workspace.host}/api/2.0/fs/create-download-url", headers=AUTH,
                            params={"path": f"{VOLUME}/dl-{unique}/none.bin", "expire_time": expire_in(600)})
    assert missing.status_code == 404
