"""Paging of Unity Catalog list calls with the official SDK, unchanged
(`max_results` / `page_token` / `next_page_token`, as the catalogs, schemas,
volumes and tables list references describe): the SDK follows the tokens
across pages, and the raw pages have the documented shape.
"""

from __future__ import annotations

import requests
from databricks.sdk.service.catalog import VolumeType

from dbx_double import TOKEN, client, unique, workspace  # noqa: F401 - fixtures

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_sdk_lists_every_page(workspace, client, unique):
    schema = f"pg_{unique}"
    client.catalogs.create(name=f"cat_{unique}")
    client.schemas.create(name=schema, catalog_name="main")
    for i in range(5):
        client.volumes.create(catalog_name="main", schema_name=schema, name=f"v{i}",
                              volume_type=VolumeType.MANAGED)
    for i in range(5):
        r = client.statement_execution.execute_statement(
            statement=f"CREATE TABLE main.{schema}.t{i} (id INT)",
            warehouse_id=workspace.warehouse_id, wait_timeout="30s")
        assert r.status.state.value == "SUCCEEDED"

    vols = [v.name for v in client.volumes.list(catalog_name="main", schema_name=schema, max_results=2)]
    assert vols == [f"v{i}" for i in range(5)]
    tables = [t.name for t in client.tables.list(catalog_name="main", schema_name=schema, max_results=2)]
    assert tables == [f"t{i}" for i in range(5)]
    cats = [c.name for c in client.catalogs.list(max_results=1)]
    assert {"main", "bridge", f"cat_{unique}"} <= set(cats) and len(cats) == len(set(cats))
    schemas = [s.name for s in client.schemas.list(catalog_name="main", max_results=1)]
    assert {"default", "demo", schema} <= set(schemas) and len(schemas) == len(set(schemas))


def test_raw_pages(workspace, client, unique):
    schema = f"raw_{unique}"
    client.schemas.create(name=schema, catalog_name="main")
    for i in range(3):
        client.volumes.create(catalog_name="main", schema_name=schema, name=f"v{i}",
                              volume_type=VolumeType.MANAGED)
    url = f"{workspace.host}/api/2.1/unity-catalog/volumes"
    q = {"catalog_name": "main", "schema_name": schema, "max_results": 2}
    first = requests.get(url, headers=AUTH, params=q).json()
    assert [v["name"] for v in first["volumes"]] == ["v0", "v1"]
    assert first["next_page_token"]
    second = requests.get(url, headers=AUTH, params={**q, "page_token": first["next_page_token"]}).json()
    assert [v["name"] for v in second["volumes"]] == ["v2"]
    assert "next_page_token" not in second

    # 0 means the server page length; unset on catalogs returns everything.
    assert "next_page_token" not in requests.get(url, headers=AUTH, params={**q, "max_results": 0}).json()
    allcats = requests.get(f"{workspace.host}/api/2.1/unity-catalog/catalogs", headers=AUTH).json()
    assert "next_page_token" not in allcats and len(allcats["catalogs"]) >= 2

    bad = requests.get(url, headers=AUTH, params={**q, "max_results": -1})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    bad = requests.get(url, headers=AUTH, params={**q, "page_token": "zz"})
    assert bad.status_code == 400
