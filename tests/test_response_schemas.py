"""The OpenAPI document describes every response, and real responses match it.

* Every route of the app has a declared success response (api/openapi_responses.py): a route added
  later fails here until it is declared there. Every schema in the document is valid JSON Schema
  and every reference resolves; the extracted spec schemas are up to date with the spec text.
* Real responses of the main routes, from the e2e stack (`herald dev` + sandbox, shared with the
  other e2e modules), each checked by schemathesis against the schema the document gives its
  status (the same check tests/test_fuzz_api.py runs on fuzzed requests): a walk through keys,
  connections, schedules, runs, campaigns, drafts, approvals, edits, retries, assets, multipart
  uploads, delivery URLs and prepare tasks. Meta's callbacks need an app secret the stack does not
  have, so they run in-process.
"""

from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
import schemathesis

from api import openapi_responses as responses
from api.app import create_app
from api.spec_schemas import extract
from herald.settings import Settings
from tests.e2e_stack import Stack, at
from tests.support import DISCORD_WEBHOOK, TELEGRAM_TOKEN, free_port, serve_in_thread, wait_for


@pytest.fixture(scope="module")
def app(tmp_path_factory):  # noqa: ANN201
    tmp = tmp_path_factory.mktemp("openapi")
    return create_app(Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'h.db'}", secret_key="s",
                               temporal_address=f"127.0.0.1:{free_port()}"))


@pytest.fixture(scope="module")
def document(app) -> dict:  # noqa: ANN001
    return app.openapi()


# --- the document ---------------------------------------------------------------------------------


def test_every_route_declares_its_success_response(document: dict) -> None:
    # The route table is the document FastAPI generates (every route but include_in_schema=False).
    routes = [(method.upper(), path) for path, item in document["paths"].items() for method in item]
    assert len(routes) >= 60
    undeclared = sorted(f"{m} {p}" for m, p in routes if responses.success_for(m, p) is None)
    assert not undeclared, ("declare these routes' success responses in api/openapi_responses.py (HERALD_ROUTES), "
                            f"or give them the spec's path: {undeclared}")
    for path, item in document["paths"].items():
        for method, op in item.items():
            success = [s for s in op["responses"] if s.startswith("2")]
            assert success, (method, path)
            declared = responses.success_for(method, path)
            for status in success:
                content = op["responses"][status].get("content")
                # A body schema for every 2xx, except a HEAD (headers only).
                assert (content is None) == (declared.schema is None), (method, path, status)
            assert op["responses"]["4XX"]["content"]["application/json"]["schema"] == responses.ref("Error")
            assert op["responses"]["5XX"]["content"]["application/json"]["schema"] == responses.ref("Error")


def test_spec_routes_keep_the_specs_schema_unless_noted() -> None:
    """A HERALD_ROUTES entry for a route the spec has may only change the schema with a note."""
    for (method, path), success in responses.HERALD_ROUTES.items():
        route = responses.spec_route(method, path)
        if route and route["response"] in responses.spec()["schemas"] and success.schema != route["response"]:
            assert success.note, f"{method} {path}: {success.schema} instead of the spec's {route['response']}"


def test_every_schema_is_valid_and_every_reference_resolves(document: dict) -> None:
    components = document["components"]["schemas"]
    for name, schema in components.items():
        jsonschema.Draft202012Validator.check_schema(schema)
    dangling = sorted(n for n in responses._refs(document) if n not in components)
    assert not dangling
    # The spec's responses are reachable under their own names.
    assert {"RunResponse", "Post", "Asset", "ErrorResponse", "Error"} <= set(components)
    # Spec schemas carry the deviations, each noted in the document and in the docs.
    assert "pending_approval" in components["Post"]["properties"]["status"]["enum"]
    docs = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    for dev in responses.SPEC_DEVIATIONS:
        assert any(dev.prop in note for note in components.get(dev.schema, {}).get("x-herald-deviation", [dev.prop]))
        assert f"`{dev.schema}.{dev.prop}`" in docs, f"docs/architecture.md: document the {dev.schema}.{dev.prop} deviation"


def test_extracted_spec_schemas_are_up_to_date() -> None:
    if not extract.DEFAULT_SPEC.exists():
        pytest.skip(f"no spec text at {extract.DEFAULT_SPEC}")
    doc = extract.build(extract.DEFAULT_SPEC.read_text(encoding="utf-8"), extract.DEFAULT_SPEC.name)
    assert len(doc["schemas"]) == 62 and len(doc["routes"]) == 80  # the counts the spec's header gives
    assert extract.render(doc) == responses.SPEC_FILE.read_text(encoding="utf-8"), \
        "rerun: .venv/bin/python -m api.spec_schemas.extract"


# --- real responses -------------------------------------------------------------------------------


class Checked:
    """An httpx client whose every answer is validated against the API's own OpenAPI document."""

    def __init__(self, base_url: str, schema_doc: dict, key: str | None) -> None:
        self.schema = schemathesis.openapi.from_dict(schema_doc)
        # Literal paths before templated ones (/v1/accounts/capabilities before /v1/accounts/{id}).
        self.templates = sorted(((p, re.compile("^" + re.sub(r"{[^}]+}", "[^/]+", p) + "$"), m.upper())
                                 for p, item in schema_doc["paths"].items() for m in item),
                                key=lambda t: t[0].count("{"))
        self.docs = schema_doc
        self.seen: dict[tuple[str, str], set[int]] = {}
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=60,
                                 event_hooks={"response": [self._check]})

    def _check(self, response: httpx.Response) -> None:
        request = response.request
        path = request.url.path
        template = next((p for p, rx, m in self.templates if m == request.method and rx.match(path)), None)
        assert template is not None, f"{request.method} {path}: not in the OpenAPI document"
        response.read()
        documented = self.docs["paths"][template][request.method.lower()]["responses"]
        status = response.status_code
        assert str(status) in documented or f"{str(status)[0]}XX" in documented, \
            f"{request.method} {template}: {status} is not documented ({sorted(documented)}): {response.text[:300]}"
        self.schema[template][request.method].validate_response(response)
        self.seen.setdefault((request.method, template), set()).add(status)

    def __getattr__(self, name: str):  # noqa: ANN204 - get/post/put/... of the httpx client
        return getattr(self.http, name)


def _png(colour: str = "orange") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "PNG")
    return buf.getvalue()


def _until(api: Checked, path: str, key: str, done, timeout: float = 60) -> dict:  # noqa: ANN001
    return wait_for(lambda: (lambda body: body if done(body[key]) else None)(api.get(path).json()),
                    timeout=timeout, interval=0.25, what=f"{path} to be done")


# The routes the walk below must reach with a success answer (others are covered when it happens to
# reach them; the fuzz test checks them all against the same document).
MAIN_ROUTES = {
    ("GET", "/health"), ("POST", "/v1/keys/validate"), ("GET", "/v1/keys"), ("POST", "/v1/keys"),
    ("DELETE", "/v1/keys/{key_id}"), ("GET", "/v1/me/usage"), ("GET", "/v1/workspace/health"), ("GET", "/v1/jobs"),
    ("POST", "/v1/connections/start"), ("GET", "/v1/connections"), ("GET", "/v1/connections/health"),
    ("GET", "/v1/connections/{connection_id}"), ("GET", "/v1/accounts"), ("GET", "/v1/accounts/capabilities"),
    ("GET", "/v1/accounts/{account_id}/capabilities"), ("GET", "/v1/accounts/{account_id}/settings"),
    ("DELETE", "/v1/accounts/{account_id}"),
    ("POST", "/v1/posts/validate"), ("POST", "/v1/posts/apply"), ("POST", "/v1/campaigns/preview"),
    ("GET", "/v1/runs/{run_id}"), ("GET", "/v1/runs/{run_id}/status"), ("GET", "/v1/runs/{run_id}/table"),
    ("GET", "/v1/runs/{run_id}/campaign"), ("POST", "/v1/runs/{run_id}/publish"), ("POST", "/v1/runs/{run_id}/approve"),
    ("POST", "/v1/runs/{run_id}/reject"), ("GET", "/v1/posts"), ("GET", "/v1/posts/{post_id}"),
    ("DELETE", "/v1/posts/{post_id}"), ("PATCH", "/v1/posts/{post_id}"), ("GET", "/v1/posts/{post_id}/attempts"),
    ("POST", "/v1/posts/{post_id}/approve"), ("POST", "/v1/posts/{post_id}/reject"),
    ("POST", "/v1/posts/{post_id}/retry"), ("POST", "/v1/posts/{post_id}/reconcile"),
    ("PATCH", "/v1/dashboard/posts/{post_id}"),
    ("POST", "/v1/assets/upload"), ("POST", "/v1/dashboard/assets/upload"), ("POST", "/v1/assets"),
    ("GET", "/v1/assets"), ("GET", "/v1/dashboard/assets"), ("GET", "/v1/assets/{asset_id}"),
    ("DELETE", "/v1/assets/{asset_id}"), ("DELETE", "/v1/dashboard/assets/{asset_id}"),
    ("POST", "/v1/assets/upload/initiate"), ("POST", "/v1/assets/upload/{asset_id}/part"),
    ("POST", "/v1/assets/upload/{asset_id}/complete"), ("POST", "/v1/assets/upload/{asset_id}/abort"),
    ("POST", "/v1/dashboard/assets/upload/initiate"), ("PUT", "/uploads/{asset_id}/parts/{part_number}"),
    ("GET", "/media/{asset_id}/{token}/{filename}"), ("HEAD", "/media/{asset_id}/{token}/{filename}"),
    ("GET", "/media/{asset_id}/{token}/previews/{name}"),
    ("POST", "/v1/media/prepare"), ("GET", "/v1/media/status/{task_id}"),
}


@pytest.mark.e2e
def test_real_responses_match_their_schemas(stack: Stack) -> None:
    httpx.delete(f"{stack.sandbox}/_sandbox").raise_for_status()
    api = Checked(stack.api, httpx.get(f"{stack.api}/openapi.json", timeout=30).json(), stack.key)
    ok = lambda r, status=200: (r.status_code == status) or pytest.fail(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")  # noqa: E731

    # Status, keys, workspace.
    ok(api.get("/health"))
    ok(api.post("/v1/keys/validate"))
    key = api.post("/v1/keys", json={"label": "schemas"})
    ok(key, 201)
    ok(api.get("/v1/keys"))
    ok(api.delete(f"/v1/keys/{key.json()['key']['id']}"))

    # Connections and accounts.
    tg = api.post("/v1/connections/start", json={"provider": "telegram", "botToken": TELEGRAM_TOKEN, "chatId": "@herald_e2e"})
    ok(tg, 201)
    dc = api.post("/v1/connections/start", json={"provider": "discord", "webhookUrl": DISCORD_WEBHOOK})
    ok(dc, 201)
    telegram, discord = tg.json()["connection"]["account"], dc.json()["connection"]["account"]
    for path in ("/v1/connections", "/v1/connections/health", f"/v1/connections/{tg.json()['connection']['id']}",
                 "/v1/accounts", "/v1/accounts/capabilities", f"/v1/accounts/{telegram['id']}/capabilities",
                 f"/v1/accounts/{discord['id']}/settings", f"/v1/accounts/{telegram['id']}/settings"):
        ok(api.get(path))

    # A schedule with media: validate, apply, the duplicate, the run's views, the published post.
    assets = [{"url": f"{stack.media}/pic0.png"}]
    body = {"idempotencyKey": f"schemas-{time.time()}", "posts": [
        {"account": telegram["handle"], "text": "schemas: telegram", "publish_at": at(2), "assets": assets},
        {"account": discord["handle"], "text": "schemas: discord", "publish_at": at(2)}]}
    ok(api.post("/v1/posts/validate", json=body))
    applied = api.post("/v1/posts/apply", json=body)
    ok(applied, 201)
    ok(api.post("/v1/posts/apply", json=body))  # the duplicate: 200
    run_id, post_id = applied.json()["run"]["id"], applied.json()["posts"][0]["id"]
    for path in (f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/status", f"/v1/runs/{run_id}/table"):
        ok(api.get(path))
    _until(api, f"/v1/posts/{post_id}", "post", lambda p: p["status"] in ("published", "failed"))
    ok(api.get(f"/v1/posts/{post_id}/attempts"))
    ok(api.get("/v1/posts", params={"runId": run_id}))
    ok(api.get("/v1/jobs"))
    ok(api.post(f"/v1/posts/{post_id}/reconcile"))

    # A failed post, retried.
    httpx.post(f"{stack.sandbox}/_sandbox/faults", json={"provider": "telegram", "kind": "reject_content"}).raise_for_status()
    failing = api.post("/v1/posts/apply", json={"posts": [{"account": telegram["handle"], "text": "again", "publish_at": at(2)}]})
    ok(failing, 201)
    failed_id = failing.json()["posts"][0]["id"]
    _until(api, f"/v1/posts/{failed_id}", "post", lambda p: p["status"] == "failed")
    ok(api.post(f"/v1/posts/{failed_id}/retry"))

    # A campaign: preview, apply, its graph; approval run by run and post by post.
    campaign = {"timezone": "UTC", "require_approval": True, "campaigns": [{
        "id": "schemas", "name": "Schemas", "caption": "v2",
        "targets": [{"account": telegram["handle"], "publish_at": at(3600), "steps": [
            {"id": "a"}, {"id": "b", "interaction_type": "reply", "parent_step_id": "a", "text": "2/2"}]}]}]}
    ok(api.post("/v1/campaigns/preview", json=campaign))
    camp = api.post("/v1/posts/apply", json=campaign)
    ok(camp, 201)
    ok(api.get(f"/v1/runs/{camp.json()['run']['id']}/campaign"))
    ok(api.post(f"/v1/runs/{camp.json()['run']['id']}/reject", json={"note": "not yet"}))
    review = api.post("/v1/posts/apply", json={"require_approval": True, "posts": [
        {"account": discord["handle"], "text": "review me", "publish_at": at(3600)},
        {"account": discord["handle"], "text": "and me", "publish_at": at(3600)},
        {"account": discord["handle"], "text": "me too", "publish_at": at(3600)}]})
    ok(review, 201)
    first, second, _ = (p["id"] for p in review.json()["posts"])
    ok(api.post(f"/v1/posts/{first}/approve", json={"reviewer": "schemas"}))
    ok(api.post(f"/v1/posts/{second}/reject", json={"note": "no"}))
    ok(api.post(f"/v1/runs/{review.json()['run']['id']}/approve"))
    ok(api.delete(f"/v1/posts/{first}"))

    # A draft: edited on both paths, then published.
    draft = api.post("/v1/posts/apply", json={"mode": "draft", "posts": [
        {"account": discord["handle"], "text": "draft", "publish_at": at(3600)}]})
    ok(draft, 201)
    draft_post = draft.json()["posts"][0]["id"]
    ok(api.patch(f"/v1/posts/{draft_post}", json={"text": "draft, edited"}))
    ok(api.patch(f"/v1/dashboard/posts/{draft_post}", json={"text": "draft, edited twice"}))
    ok(api.post(f"/v1/runs/{draft.json()['run']['id']}/publish"))
    ok(api.delete(f"/v1/posts/{draft_post}"))

    # Assets: upload (both paths), register by URL (its size is not known yet), list, detail,
    # delivery and preview URLs, delete (both paths).
    png = base64.b64encode(_png()).decode()
    up = api.post("/v1/assets/upload", json={"filename": "a.png", "contentBase64": png})
    ok(up, 201)
    ok(api.post("/v1/dashboard/assets/upload", json={"filename": "b.png", "contentBase64": png}), 201)
    ok(api.post("/v1/assets", json={"publicUrl": f"{stack.media}/pic1.png"}), 201)
    asset = _until(api, f"/v1/assets/{up.json()['asset']['id']}", "asset", lambda a: a["status"] in ("ready", "failed"))["asset"]
    assert asset["status"] == "ready", asset
    ok(api.get("/v1/assets"))
    ok(api.get("/v1/dashboard/assets"))
    ok(api.get(asset["publicUrl"]))
    ok(api.head(asset["publicUrl"]))
    ok(api.get(asset["publicUrl"], headers={"Range": "bytes=0-3"}), 206)
    for url in (asset.get("preview") or {}).values():
        ok(api.get(url))
    ok(api.delete(f"/v1/assets/{asset['id']}"))
    ok(api.delete(f"/v1/dashboard/assets/{up.json()['asset']['id']}"))

    # Multipart: initiate, sign, PUT the part to the signed URL, complete; another aborted.
    data = _png("blue")
    init = api.post("/v1/assets/upload/initiate", json={"filename": "m.png", "size": len(data)})
    ok(init, 201)
    upload_id, mp_id = init.json()["upload"]["uploadId"], init.json()["asset"]["id"]
    signed = api.post(f"/v1/assets/upload/{mp_id}/part", json={"uploadId": upload_id, "partNumber": 1})
    ok(signed)
    put = api.put(signed.json()["url"], content=data)
    ok(put)
    ok(api.post(f"/v1/assets/upload/{mp_id}/complete", json={"uploadId": upload_id,
                                                              "parts": [{"ETag": put.json()["etag"], "PartNumber": 1}]}))
    other = api.post("/v1/dashboard/assets/upload/initiate", json={"filename": "n.png", "size": 10})
    ok(other, 201)
    ok(api.post(f"/v1/assets/upload/{other.json()['asset']['id']}/abort",
                json={"uploadId": other.json()["upload"]["uploadId"]}))

    # Prepare tasks.
    task = api.post("/v1/media/prepare", json={"urls": [f"{stack.media}/pic2.png", "https://127.0.0.1:1/nothing.png"]})
    ok(task, 202)
    _until(api, f"/v1/media/status/{task.json()['taskId']}", "status", lambda s: s != "processing")

    # Usage and health now that there is something to count; an account disconnected.
    ok(api.get("/v1/me/usage"))
    ok(api.get("/v1/workspace/health"))
    ok(api.delete(f"/v1/accounts/{discord['id']}"))
    ok(api.get("/v1/posts"))

    # Errors are checked too (the Error schema).
    assert api.get("/v1/posts/post_nope").status_code == 404
    assert api.post("/v1/posts/apply", json={"posts": [{"account": "nobody", "text": "x"}]}).status_code == 422

    missing = sorted(MAIN_ROUTES - {route for route, statuses in api.seen.items() if any(s < 300 for s in statuses)})
    assert not missing, f"the walk did not reach: {missing}"


def test_meta_callbacks_match_their_schemas(tmp_path) -> None:  # noqa: ANN001
    from store.migrate import upgrade
    from tests.test_meta_webhooks import request_for

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}", secret_key="s",
                        temporal_address=f"127.0.0.1:{free_port()}", meta_app_secret="facebook-app-secret")
    upgrade(settings.db_url)
    app = create_app(settings)
    with serve_in_thread(app) as url:
        api = Checked(url, httpx.get(f"{url}/openapi.json").json(), None)
        assert api.post("/webhooks/meta/deauthorize", data=request_for("1234")).status_code == 200
        deleted = api.post("/webhooks/meta/data-deletion", data=request_for("1234"))
        assert deleted.status_code == 200
        status = f"/webhooks/meta/data-deletion/{deleted.json()['confirmation_code']}"
        assert api.get(status, headers={"Accept": "application/json"}).json()["ok"] is True
        assert api.get(status).headers["content-type"].startswith("text/html")
        assert api.post("/webhooks/meta/deauthorize", data={"signed_request": "x.y"}).status_code == 400
