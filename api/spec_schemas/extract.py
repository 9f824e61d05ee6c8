"""Extract SocialClaw's named JSON Schemas (and its route table) from the spec text.

The SocialClaw reference (/work/shared/spec/socialclaw-api.txt) ends with a "JSON Schema
components" section: each schema is a header line ``Name Description.`` followed by a JSON
document. Every route section above it ends with ``Request: X Response: Y``, and starts with a
``METHOD /path`` line. This script writes both to ``socialclaw.json`` next to it:

    {"source": ..., "schemas": {Name: schema, ...},
     "routes": [{"method": "GET", "path": "/v1/runs/{runId}", "request": "none", "response": "RunResponse"}, ...]}

Schemas are kept as the spec writes them (including their ``$schema`` keyword and their
``#/components/schemas/X`` references); api/openapi_responses.py installs them into the
OpenAPI document, where those references resolve.

Regenerate after the spec changes:

    .venv/bin/python -m api.spec_schemas.extract [SPEC_TXT] [-o api/spec_schemas/socialclaw.json]

(or ``python api/spec_schemas/extract.py ...``). ``--check`` exits non-zero when the committed
file differs from what the spec text gives (tests/test_response_schemas.py runs the same check
when the spec text is present).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

DEFAULT_SPEC = Path("/work/shared/spec/socialclaw-api.txt")
DEFAULT_OUT = Path(__file__).with_name("socialclaw.json")

_COMPONENTS_HEADING = "JSON Schema components"
_HEADER = re.compile(r"^([A-Z][A-Za-z0-9]*)(?: (.*))?$")
_ROUTE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)$")
_CONTRACT = re.compile(r"^Request: (\S+) Response: (\S+)$")


def extract_schemas(text: str) -> dict[str, dict]:
    start = text.find(_COMPONENTS_HEADING)
    if start < 0:
        raise ValueError(f"no {_COMPONENTS_HEADING!r} section in the spec text")
    lines = text[start:].splitlines(keepends=True)
    decoder = json.JSONDecoder()
    schemas: dict[str, dict] = {}
    i = 0
    while i < len(lines):
        match = _HEADER.match(lines[i].rstrip("\n"))
        if match and i + 1 < len(lines) and lines[i + 1].startswith("{"):
            rest = "".join(lines[i + 1:])
            schema, end = decoder.raw_decode(rest)
            name = match.group(1)
            if name in schemas:
                raise ValueError(f"schema {name} appears twice")
            schemas[name] = schema
            i += 1 + rest[:end].count("\n") + 1
            continue
        i += 1
    return dict(sorted(schemas.items()))


def extract_routes(text: str) -> list[dict[str, str]]:
    end = text.find(_COMPONENTS_HEADING)
    routes: list[dict[str, str]] = []
    current: tuple[str, str] | None = None
    for line in text[:end if end >= 0 else len(text)].splitlines():
        if m := _ROUTE.match(line):
            current = (m.group(1), m.group(2))
        elif (m := _CONTRACT.match(line)) and current:
            routes.append({"method": current[0], "path": current[1], "request": m.group(1), "response": m.group(2)})
            current = None
    return routes


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def build(text: str, source: str) -> dict:
    schemas = extract_schemas(text)
    routes = extract_routes(text)
    dangling = sorted(_refs(schemas) - set(schemas))
    if dangling:
        raise ValueError(f"schemas reference unknown components: {dangling}")
    missing = sorted(n for n in _names(routes) if n not in schemas)
    if missing:
        raise ValueError(f"routes name schemas the spec does not define: {missing}")
    return {"source": source, "schemas": schemas, "routes": routes}


def _names(routes: list[dict[str, str]]) -> set[str]:
    # "none", "redirect" and media types are not schema names.
    return {r[k] for r in routes for k in ("request", "response") if re.fullmatch(r"[A-Z][A-Za-z0-9]*", r[k])}


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", type=Path, default=DEFAULT_SPEC, help=f"spec text (default {DEFAULT_SPEC})")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help=f"output (default {DEFAULT_OUT.name})")
    parser.add_argument("--check", action="store_true", help="only compare with the existing output")
    args = parser.parse_args(argv)
    doc = build(args.spec.read_text(encoding="utf-8"), args.spec.name)
    out = render(doc)
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == out
        print(f"{args.out}: {'up to date' if same else 'STALE: rerun without --check'}")
        return 0 if same else 1
    args.out.write_text(out, encoding="utf-8")
    print(f"wrote {args.out}: {len(doc['schemas'])} schemas, {len(doc['routes'])} routes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
