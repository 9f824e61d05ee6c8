"""Temporal names and helpers shared by api, workers and tests: search attributes, workflow ids,
Temporal UI links, and the client factory (always with the pydantic data converter)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.service import GrpcCompression
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter

if TYPE_CHECKING:
    from herald.contracts import PostWorkflowInput

SA_WORKSPACE = SearchAttributeKey.for_keyword("HeraldWorkspace")
SA_RUN = SearchAttributeKey.for_keyword("HeraldRunId")
SA_PROVIDER = SearchAttributeKey.for_keyword("HeraldProvider")
SA_ACCOUNT = SearchAttributeKey.for_keyword("HeraldAccount")
SA_STATUS = SearchAttributeKey.for_keyword("HeraldStatus")
SA_PUBLISH_AT = SearchAttributeKey.for_datetime("HeraldPublishAt")
SEARCH_ATTRIBUTES = (SA_WORKSPACE, SA_RUN, SA_PROVIDER, SA_ACCOUNT, SA_STATUS, SA_PUBLISH_AT)


def run_workflow_id(run_id: str) -> str:
    return f"run-{run_id}"


def post_workflow_id(post_id: str) -> str:
    return f"post-{post_id}"


def ui_url(ui_base: str, namespace: str, workflow_id: str) -> str:
    return f"{ui_base}/namespaces/{namespace}/workflows/{workflow_id}"


async def connect(target: str, namespace: str, compression: str = "none") -> Client:
    return await Client.connect(
        target, namespace=namespace, data_converter=pydantic_data_converter,
        grpc_compression=GrpcCompression.GZIP if compression == "gzip" else GrpcCompression.NONE,
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register our search attributes (idempotent). Upserting an unregistered attribute makes a
    workflow task fail forever, so workers call this before polling."""
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    from temporalio.service import RPCError, RPCStatusCode

    try:
        existing = set(
            (await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace))).custom_attributes
        )
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server has no list
            raise
        existing = set()
    # The SDK's SearchAttributeIndexedValueType values are the proto enum's values.
    missing = {key.name: int(key.indexed_value_type) for key in SEARCH_ATTRIBUTES if key.name not in existing}
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise


def post_search_attributes(post: "PostWorkflowInput") -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(SA_WORKSPACE, post.workspace_id),
        SearchAttributePair(SA_RUN, post.run_id),
        SearchAttributePair(SA_PROVIDER, post.provider),
        SearchAttributePair(SA_ACCOUNT, post.account_handle),
        SearchAttributePair(SA_STATUS, "scheduled"),
        SearchAttributePair(SA_PUBLISH_AT, post.publish_at),
    ])


def run_search_attributes(workspace_id: str, run_id: str) -> TypedSearchAttributes:
    return TypedSearchAttributes([
        SearchAttributePair(SA_WORKSPACE, workspace_id),
        SearchAttributePair(SA_RUN, run_id),
        SearchAttributePair(SA_STATUS, "processing"),
    ])
