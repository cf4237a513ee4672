"""``/openapi.json``: a valid OpenAPI 3.1 document that describes exactly the app that serves
it, checked three ways: by openapi-spec-validator, against the app's own URL map and real
responses, and by schemathesis fuzzing the running gateway with it."""

from __future__ import annotations

import importlib.metadata
import json
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import msgspec
import pytest
import trio

from arkrelay_core.config import HttpSettings
from arkrelay_core.http import openapi
from arkrelay_core.http.app import create_app
from arkrelay_core.http.context import ApiContext
from arkrelay_core.http.routes import Route
from arkrelay_core.nostr import generate_secret_key, xonly_public_key
from arkrelay_core.store.models import CeremonySession, Intent, Invoice

from .conftest import ADMIN_KEY
from .settlements import add_settlement

VALIDATOR = "openapi-spec-validator==0.9.0"
SCHEMATHESIS = "schemathesis==4.32.5"
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
)
ADMIN = {"X-Admin-Key": ADMIN_KEY}
JSON = "application/json"
#: Methods quart answers for every rule by itself.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


def uvx() -> list[str]:
    found = shutil.which("uvx")
    if found is not None:
        return [found]
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to run openapi-spec-validator and schemathesis")
    return [uv, "tool", "run"]


async def run_tool(command: list[str], cwd: Path) -> tuple[int, str]:
    with trio.fail_after(240):
        done = await trio.run_process(
            command, cwd=cwd, capture_stdout=True, stderr=subprocess.STDOUT, check=False
        )
    return done.returncode, done.stdout.decode(errors="replace")


async def fetch_document(api: Any) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    return response.json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``doc``."""
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def check_response(doc: dict[str, Any], template: str, response: httpx.Response) -> None:
    """``response`` has a documented status and media type, and its JSON fits the schema."""
    where = f"{response.request.method} {response.request.url}"
    op = doc["paths"][template][response.request.method.lower()]
    documented = op["responses"].get(str(response.status_code))
    assert documented is not None, f"{where}: undocumented {response.status_code} {response.text}"
    media = response.headers["content-type"].split(";")[0].strip()
    by_type = {key.split(";")[0].strip(): value for key, value in documented["content"].items()}
    assert media in by_type, f"{where}: {media} is not among {list(documented['content'])}"
    if media == JSON:
        errors = sorted(
            validator(doc, by_type[media]["schema"]).iter_errors(response.json()), key=str
        )
        assert not errors, f"{where} ({response.status_code}): {errors[0].message}\n{response.text}"


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


async def seed(api: Any) -> dict[str, str]:
    """Rows and VTXOs behind every parameterised read route: a real value per path
    parameter name (final states only, so no background task picks the rows up)."""
    gateway = api.gateway
    owner = xonly_public_key(generate_secret_key()).hex()
    for amount in (1_000, 2_000):
        await gateway.components.backends["ark"].board(owner, amount)
    gbtc = gateway.engine.assets.resolve("gBTC")
    now = int(time.time())
    event_id = secrets.token_hex(32)
    values = {
        "pubkey": owner,
        "author": owner,
        "action_id": "openapi-test-1",
        "session_id": f"sess_{event_id[:24]}",
        "asset_id": gbtc,
        "payment_hash": secrets.token_hex(32),
        "settlement_id": "openapi-test-settlement",
        "ark_txid": secrets.token_hex(32),
    }

    def insert(db: Any) -> None:
        intent = Intent(
            event_id=event_id,
            author=owner,
            action_id=values["action_id"],
            type="transfer",
            params={"amount": 1_000},
            raw_event={},
            network="regtest",
            expires_at=now + 600,
            received_at=now,
            batch_id=None,
        )
        db.add(intent)
        db.add(
            CeremonySession(
                id=values["session_id"],
                intent=intent,
                author=owner,
                type="transfer",
                state="failed",
                step_index=1,
                step_total=2,
                scheme="nip44",
                context={},
                error_code=1004,
                error_message="signature timed out",
                created_at=now,
                updated_at=now,
                expires_at=now + 600,
            )
        )
        db.add(
            Invoice(
                payment_hash=values["payment_hash"],
                direction="in",
                bolt11="lnbcrt10u1openapitest",
                amount_sat=1_000,
                asset_id=gbtc,
                owner=owner,
                ref_id="openapi-test-lift",
                state="expired",
                expires_at=now,
                created_at=now - 600,
                updated_at=now,
                context={},
            )
        )
        # With its leaves, so that one of them has a proof (the settlement's own routes).
        add_settlement(
            db,
            values["settlement_id"],
            [values["ark_txid"], *(secrets.token_hex(32) for _ in range(4))],
            l1_txid=secrets.token_hex(32),
            block_height=101,
            period_end=now,
        )

    await gateway.engine.store.run(insert)
    return values


# -- the document itself -------------------------------------------------------------------


async def test_document_is_valid_openapi_3_1(api, tmp_path: Path) -> None:
    doc = await fetch_document(api)
    assert doc["openapi"].startswith("3.1.")
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc))
    command = [*uvx(), "--from", VALIDATOR, "openapi-spec-validator", "--schema", "3.1", str(path)]
    returncode, output = await run_tool(command, tmp_path)
    assert returncode == 0, output


async def test_document_names_the_gateway_and_its_security(api) -> None:
    doc = await fetch_document(api)
    assert doc["info"]["version"] == importlib.metadata.version("arkrelay-core")
    assert doc["servers"] == [{"url": api.url}]
    scheme = doc["components"]["securitySchemes"][openapi.SECURITY_SCHEME]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-Admin-Key"}
    for route in api.gateway.http.context.routes:
        op = doc["paths"][route.path][route.method.lower()]
        assert ("security" in op) == route.admin, route.path
        if route.admin:
            assert op["security"] == [{openapi.SECURITY_SCHEME: []}]
            assert "401" in op["responses"], route.path
        if route.media_type != JSON:
            assert op["responses"]["200"]["content"] == {
                route.media_type: {"schema": {"type": "string"}}
            }


async def test_document_is_consistent(api) -> None:
    """References resolve, schemas are valid JSON Schema, examples fit their schemas, and
    every path template names exactly its path parameters."""
    doc = await fetch_document(api)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(doc):
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            assert part in target, f"{ref} does not resolve"
            target = target[part]
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)

    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))
    examples = 0
    for path, method, op in operations(doc):
        params = op.get("parameters", [])
        declared = sorted(p["name"] for p in params if p["in"] == "path")
        assert declared == sorted(re.findall(r"\{(\w+)\}", path)), f"{method} {path}"
        for param in params:
            if "example" in param:
                validator(doc, param["schema"]).validate(param["example"])
                examples += 1
        for response in op["responses"].values():
            for content in response["content"].values():
                if "example" in content:
                    validator(doc, content["schema"]).validate(content["example"])
                    examples += 1
    assert examples > 0


async def test_document_is_built_once_per_app(api, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await api.get("/openapi.json")

    def rebuilt(*args: Any) -> dict[str, Any]:
        raise AssertionError("the document was built again")

    monkeypatch.setattr(openapi, "build_document", rebuilt)
    again = await api.get("/openapi.json")
    assert again.status_code == 200 and again.content == first.content


# -- the document against the running app ----------------------------------------------------


async def test_every_rule_of_the_app_is_documented_and_nothing_else(api) -> None:
    doc = await fetch_document(api)
    served = set()
    for rule in api.gateway.http.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        template = re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - AUTOMATIC_METHODS:
            served.add((template, method, rule.endpoint))
    documented = {(path, method, op["operationId"]) for path, method, op in operations(doc)}
    assert served == documented


async def test_a_wrong_method_is_told_the_documented_ones(api) -> None:
    doc = await fetch_document(api)
    for template, item in doc["paths"].items():
        wrong = "DELETE" if "delete" not in item else "PATCH"
        params = {p["name"]: "x" for op in item.values() for p in op.get("parameters", [])}
        response = await api.client.request(wrong, fill(template, params))
        assert response.status_code == 405, template
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed - AUTOMATIC_METHODS == {m.upper() for m in item}, template


async def test_responses_fit_the_documented_schemas(api) -> None:
    """Each GET operation, asked with real values, unknown values, bad query values and (for
    /admin) no key: every answer has a documented status and fits its schema."""
    values = await seed(api)
    doc = await fetch_document(api)
    answered_ok = set()
    expect_ok = set()
    for template, method, op in operations(doc):
        if method != "GET":
            continue
        headers = ADMIN if "security" in op else {}
        params = op.get("parameters", [])
        path_names = [p["name"] for p in params if p["in"] == "path"]
        query_names = [p["name"] for p in params if p["in"] == "query"]
        requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        if all(name in values for name in path_names):
            expect_ok.add(template)
            known = fill(template, values)
            requests.append((known, {}, headers))
            requests.append((known, {name: "1" for name in query_names}, headers))
            requests.append((known, {name: "%%not-valid" for name in query_names}, headers))
        if path_names:
            requests.append(
                (fill(template, dict.fromkeys(path_names, "nothing-here")), {}, headers)
            )
        if headers:
            requests.append((fill(template, values | dict.fromkeys(path_names, "x")), {}, {}))
        for url, query, with_headers in requests:
            response = await api.get(url, params=query, headers=with_headers)
            check_response(doc, template, response)
            if response.status_code == 200:
                answered_ok.add(template)
    assert expect_ok <= answered_ok, f"never 200: {sorted(expect_ok - answered_ok)}"

    page = await api.get(f"/vtxos/{values['pubkey']}", params={"limit": "1"})
    check_response(doc, "/vtxos/{pubkey}", page)
    assert len(page.json()["items"]) == 1 and isinstance(page.json()["next_cursor"], str)


async def test_not_ready_fits_the_documented_503(api, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = await fetch_document(api)
    endpoint = api.gateway.components.all()["transport.endpoint"]
    monkeypatch.setattr(endpoint, "statistics", lambda: {"connected": False})
    response = await api.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["transport.endpoint"]["ok"] is False
    check_response(doc, "/ready", response)


async def test_schemathesis_finds_no_server_error_and_no_contradiction(api, tmp_path: Path) -> None:
    values = await seed(api)
    doc = await fetch_document(api)
    # Real values for half of the path parameters, so fuzzing reaches the 200 answers too.
    config = [
        line
        for name, value in values.items()
        for line in (f"[dictionaries.{name}]", f"values = [{json.dumps(value)}]")
    ]
    config.append("[parameters]")
    config += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in values]
    (tmp_path / "schemathesis.toml").write_text("\n".join(config) + "\n")
    command = [
        *uvx(),
        "--from",
        SCHEMATHESIS,
        "schemathesis",
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        f"{api.url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        "25",
        "--header",
        f"X-Admin-Key: {ADMIN_KEY}",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ]
    returncode, output = await run_tool(command, tmp_path)
    assert returncode == 0, output
    # Schemathesis leaves out the operation that serves the document it tests with.
    tested = [path for path, _, _ in operations(doc) if path != "/openapi.json"]
    assert f"Tested: {len(tested)}" in output, output


# -- routes the gateway does not serve yet ---------------------------------------------------


class Greeting(msgspec.Struct):
    name: str
    times: int = 1


class Greeted(msgspec.Struct):
    text: str


class Options(msgspec.Struct):
    loud: bool = False


async def greet(ctx: Any, body: Greeting) -> Greeted:
    return Greeted(" ".join([f"hello {body.name}"] * body.times))


async def configure(ctx: Any, body: Options) -> Greeted:
    return Greeted("HELLO" if body.loud else "hello")


async def test_a_route_with_a_body_documents_what_the_app_answers() -> None:
    """Request bodies: the app's 400 (undecodable) and 413 (too large) are documented, and a
    body that may be left out (all fields defaulted) is not required."""
    routes = [
        Route("POST", "/greet", greet, Greeted, summary="Greet", tag="t", body=Greeting),
        Route("POST", "/configure", configure, Greeted, summary="Set", tag="t", body=Options),
    ]
    doc = openapi.build_document(routes)
    assert "servers" not in doc
    greet_op = doc["paths"]["/greet"]["post"]
    assert set(greet_op["responses"]) == {"200", "400", "413"}
    assert greet_op["requestBody"]["required"] is True
    assert doc["paths"]["/configure"]["post"]["requestBody"]["required"] is False

    settings = HttpSettings(max_body_bytes=1024)
    context = ApiContext(gateway=None, settings=settings, routes=routes)  # type: ignore[arg-type]
    client = create_app(context, routes).test_client()
    for path, content, status in (
        ("/greet", b'{"name": "ark", "times": 2}', 200),
        ("/greet", b'{"times": 2}', 400),
        ("/greet", b"not json", 400),
        ("/greet", b"", 400),
        ("/greet", b'{"name": "' + b"x" * 2000 + b'"}', 413),
        ("/configure", b"", 200),
    ):
        answer = await client.post(path, data=content)
        assert answer.status_code == status, (path, content[:40])
        response = httpx.Response(
            status,
            headers=dict(answer.headers),
            content=await answer.get_data(),
            request=httpx.Request("POST", f"http://app{path}"),
        )
        check_response(doc, path, response)
