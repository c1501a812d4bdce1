"""schemathesis hooks of tests/clients/test_schemathesis.py.

The document says what a request may look like. Two things it cannot say,
so a schema-valid request the server must refuse is not generated as a
*positive* case (one the server should accept):

* values that name things on the server under test: the queries and config
  directories inside its roots, a country with a <Country>.yaml, a query
  file. schemathesis.toml gives the fuzzing and stateful phases this
  server's values for them; the coverage phase (boundary values) does not
  apply those, so its positive cases naming anything else are left out here;
* POST /sync/events and the /spark/writes calls need at least one primary
  key for UPDATE, DELETE and UPSERT (documented on `primary_keys`): a
  condition between two fields,
  which the client generators the document feeds (progenitor,
  openapi-python-client) do not read from `if`/`then`;
* an Idempotency-Key stands for one request: sent again with a different
  request it is refused with 422 (draft-ietf-httpapi-idempotency-key-header
  §2.7). The fuzzer draws keys from a small space (the coverage phase sends
  the same boundary values with many bodies), so a positive case gets a key
  of its own (a UUID, which the key's pattern allows).

Negative cases are never filtered: whatever they name, the server must
refuse them.
"""

from __future__ import annotations

import uuid

import schemathesis

COUNTRIES = {"Colombia", "Mexico"}
QUERIES = {"ventas", "productos"}
NEEDS_KEYS = {"UPDATE", "DELETE", "UPSERT"}


def _is_positive(case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


def _extract_ok(body) -> bool:
    if not isinstance(body, dict):
        return True
    queries = body.get("queries", [])
    return (
        body.get("queries_path") == "./queries"
        and body.get("config_path") == "./config"
        and body.get("country") in COUNTRIES
        and body.get("destination") == "/Volumes/main/demo/landing"
        and isinstance(queries, list)
        and set(queries) <= QUERIES
    )


def _params_ok(query) -> bool:
    query = query or {}
    names = [n.strip() for n in str(query.get("queries", "")).split(",") if n.strip()]
    return (
        query.get("country") in COUNTRIES
        and query.get("config_path", "./config") == "./config"
        and query.get("queries_path", "./queries") == "./queries"
        and set(names) <= QUERIES
    )


def _queries_ok(query) -> bool:
    return (query or {}).get("queries_path", "./queries") in {"./queries", "queries"}


def _countries_ok(query) -> bool:
    return (query or {}).get("config_path", "./config") in {"./config", "config"}


def _sync_ok(body) -> bool:
    if not isinstance(body, dict):
        return True
    return not (body.get("operation") in NEEDS_KEYS and not body.get("primary_keys"))


@schemathesis.hook
def filter_case(context, case) -> bool:
    if not _is_positive(case):
        return True
    method, path = case.method.upper(), case.operation.path
    if (method, path) == ("POST", "/extract"):
        return _extract_ok(case.body)
    if (method, path) == ("GET", "/params"):
        return _params_ok(case.query)
    if (method, path) == ("GET", "/queries"):
        return _queries_ok(case.query)
    if (method, path) == ("GET", "/countries"):
        return _countries_ok(case.query)
    if (method, path) in (("POST", "/sync/events"), ("POST", "/spark/writes"), ("POST", "/spark/writes/abort")):
        return _sync_ok(case.body)
    if (method, path) == ("POST", "/spark/writes/commit"):
        return not isinstance(case.body, dict) or _sync_ok(case.body.get("write"))
    return True


@schemathesis.hook
def map_case(context, case):
    if _is_positive(case) and case.headers:
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = str(uuid.uuid4())
    return case
