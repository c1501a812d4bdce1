"""The committed openapi.json is a valid OpenAPI document (checked by a
validator nobody here wrote), and documents what every route promises:
bearer security on the token routes, the error shape on every 4xx/5xx."""

import json
import pathlib

from openapi_spec_validator import validate

SPEC = pathlib.Path(__file__).resolve().parents[2] / "openapi.json"


def load():
    return json.loads(SPEC.read_text())


def test_validates_as_openapi():
    doc = load()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_error_response_has_the_error_shape():
    doc = load()
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) >= {"code", "message"}
    open_routes = {"/health/live", "/metrics", "/openapi.json", "/docs"}
    # Open to everyone; a valid token only adds detail (hosts, errors).
    token_optional = {"/health/ready"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")) and path != "/health/ready":
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            if path in open_routes:
                assert "security" not in op, (method, path)
            elif path in token_optional:
                assert op["security"] == [{}, {"bearer": []}], (method, path)
                assert "401" not in op["responses"], (method, path)
            else:
                assert op["security"] == [{"bearer": []}], (method, path)
                assert "401" in op["responses"], (method, path)


def test_the_decks_endpoints_are_there():
    paths = load()["paths"]
    for method, path in [
        ("post", "/extract"),
        ("get", "/jobs/{job_id}"),
        ("get", "/jobs"),
        ("delete", "/jobs/{job_id}"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/queries"),
        ("get", "/params"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ]:
        assert method in paths[path], (method, path)
