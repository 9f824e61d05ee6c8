"""What the X adapter sends is valid against X's own OpenAPI description (the request schemas of
POST /2/tweets, /2/media/upload/initialize and /2/media/metadata, copied from the official
document into tests/data/openapi/x-api-v2-requests.json). The emulator checks the same rules by
hand; this checks the adapter against the source instead.

The subset is the official document's ``components.schemas`` entries named in its "x-source",
plus every schema they reference (``$ref``), unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from providers.x import XAdapter
from tests.support import SSL_CONTEXT
from tests.test_provider_x import app, connect, gif, media_file, png, req  # noqa: F401 - fixtures

DOC = json.loads((Path(__file__).parent / "data" / "openapi" / "x-api-v2-requests.json").read_text())
URI = "urn:x-openapi"
REGISTRY = Registry().with_resource(URI, Resource(contents=DOC, specification=DRAFT7))
SCHEMA_OF = {
    "/2/tweets": "CreatePostsRequest",
    "/2/media/upload/initialize": "InitializeMediaUploadRequest",
    "/2/media/metadata": "CreateMediaMetadataRequest",
}


def validator(name: str) -> Draft7Validator:
    return Draft7Validator({"$ref": f"{URI}#/components/schemas/{name}"}, registry=REGISTRY)


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    httpx.post(f"{clean_sandbox}/x/_sandbox", json={"processingSeconds": 0.2}).raise_for_status()


@pytest.fixture
async def sent(sandbox_url):
    """An X adapter whose client records every JSON body it sends, by path."""
    bodies: list[tuple[str, dict]] = []

    async def record(request: httpx.Request) -> None:
        if request.headers.get("content-type", "").startswith("application/json"):
            path = request.url.path.split("/x/api", 1)[1]
            bodies.append((path, json.loads(request.content)))

    async with httpx.AsyncClient(timeout=10, verify=SSL_CONTEXT, event_hooks={"request": [record]}) as http:
        adapter = XAdapter(http, f"{sandbox_url}/x/api")
        adapter.max_poll_wait = 0.25
        yield adapter, bodies


def test_the_subset_is_the_official_schema() -> None:
    create = DOC["components"]["schemas"]["CreatePostsRequest"]
    assert create["additionalProperties"] is False and "reply" in create["properties"]
    assert list(validator("CreatePostsRequest").iter_errors({"text": "x", "bogus": 1}))  # it can fail
    assert list(validator("CreatePostsRequest").iter_errors({"text": "x", "reply_settings": "anyone"}))


async def test_every_body_the_adapter_sends_matches_the_openapi(sent, app, tmp_path) -> None:  # noqa: F811
    adapter, bodies = sent
    creds = await connect(adapter, app)
    first = await adapter.publish(creds, req(text="hello from herald"))
    await adapter.publish(creds, req(text="a reply", reply_to=first.provider_post_id, interaction="reply",
                                     settings={"replySettings": "following"}))
    await adapter.publish(creds, req(text="a quote", settings={"quoteTweetId": first.provider_post_id}))
    pics = [media_file(tmp_path, f"p{i}.png", png(color=c), "image/png", "image", alt=f"picture {i}")
            for i, c in enumerate(("red", "green"))]
    await adapter.publish(creds, req(text="two pictures", media=pics))
    await adapter.publish(creds, req(text="a gif", media=[media_file(tmp_path, "g.gif", gif(), "image/gif", "image")]))

    checked = {name: 0 for name in SCHEMA_OF}
    for path, body in bodies:
        if path not in SCHEMA_OF:
            continue
        errors = [e.message for e in validator(SCHEMA_OF[path]).iter_errors(body)]
        assert errors == [], (path, body, errors)
        checked[path] += 1
    assert checked == {"/2/tweets": 5, "/2/media/upload/initialize": 3, "/2/media/metadata": 2}, checked
