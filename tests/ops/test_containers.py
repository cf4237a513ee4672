"""compose.yaml, the Dockerfile and ops/docker/arkrelay.toml describe one deployment. These
tests check that they agree with each other, with protos/PINS.toml and with the workspace.

No Docker engine is needed: compose.yaml is parsed with PyYAML, the Dockerfile with the
small parser below, and the gateway's config is loaded by the real loader with the
installed plugins' settings types.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from arkrelay_core.config import Config, HostPort, load_config_text
from arkrelay_core.plugins import PluginRegistry, load_plugins

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
GATEWAY_CONFIG = ROOT / "ops" / "docker" / "arkrelay.toml"
ENV_EXAMPLE = ROOT / "ops" / "docker" / "env.example"
PINS = ROOT / "protos" / "PINS.toml"

GATEWAY = "gateway"
CONFIG_MOUNT = PurePosixPath("/etc/arkrelay/arkrelay.toml")
PACKAGES_ARG = "ARKRELAY_PACKAGES"

#: Workspace packages the image leaves out, and why. A workspace package that is neither
#: here nor in the Dockerfile's ARKRELAY_PACKAGES fails the test: someone must decide.
EXCLUDED_FROM_IMAGE = {
    "arkrelay-wallet": "the reference wallet and `arkrelay demo`: a client of the gateway",
}
#: Compose services running a pinned daemon: (image name, protos/PINS.toml entry).
PINNED_IMAGES = {
    "lnd": ("lightninglabs/lnd", "lnd"),
    "tapd": ("lightninglabs/taproot-assets", "tapd"),
    "arkd": ("ghcr.io/arkade-os/arkd", "arkd"),
    "arkd-wallet": ("ghcr.io/arkade-os/arkd-wallet", "arkd"),
}
#: Services without a healthcheck, and why.
NO_HEALTHCHECK = {
    GATEWAY: "the image's HEALTHCHECK (GET /ready)",
    "nbxplorer": "its image has no HTTP client to probe with",
}
#: A release tag: 29.2, 17.8, v0.9.15, v0.21.2-beta, 3.11.13-slim-bookworm.
VERSION_TAG = re.compile(r"v?\d+(\.\d+)+([.-][0-9A-Za-z.-]+)?")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
#: Flags by which a daemon in compose.yaml is told where to listen.
LISTEN_FLAG = re.compile(r"--(?:rpc|rest)?listen=.*:(\d+)")


# --------------------------------------------------------------------------------------------
# The Dockerfile


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON-array form of ENTRYPOINT, CMD (and HEALTHCHECK ... CMD) arguments."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text.partition(" CMD ")[2].strip()
        value = json.loads(text)
        assert isinstance(value, list), f"line {self.line}: {self.keyword} is not exec form"
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    args: dict[str, str] = field(default_factory=dict)
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; FROM images have the global ARGs substituted."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        # Docker drops comment lines, also between the lines of a continued instruction.
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            words = [w for w in words if not w.startswith("--")]
            base = _substitute(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif instruction.keyword == "ARG":
            name, _, default = shlex.split(instruction.arguments)[0].partition("=")
            (stages[-1].args if stages else global_args)[name] = default
            if stages:
                stages[-1].instructions.append(instruction)
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before any FROM"
            stages[-1].instructions.append(instruction)
    return stages


def _substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], text)


# --------------------------------------------------------------------------------------------
# compose.yaml


@dataclass
class Mount:
    source: str
    target: PurePosixPath
    read_only: bool

    @property
    def named_volume(self) -> bool:
        return not self.source.startswith((".", "/", "~"))


def mounts(service: dict[str, Any]) -> list[Mount]:
    found = []
    for spec in service.get("volumes", []):
        if isinstance(spec, dict):
            found.append(
                Mount(spec["source"], PurePosixPath(spec["target"]), spec.get("read_only", False))
            )
            continue
        source, target, *mode = spec.split(":")
        found.append(Mount(source, PurePosixPath(target), "ro" in "".join(mode).split(",")))
    return found


def published_ports(service: dict[str, Any]) -> set[int]:
    """Container ports published to the host (short or long syntax)."""
    ports = set()
    for spec in service.get("ports", []):
        if isinstance(spec, dict):
            ports.add(int(spec["target"]))
        else:
            ports.add(int(str(spec).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def exposed_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(port).split("/")[0]) for port in service.get("expose", [])}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: str(value) for name, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command", [])
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def split_image(reference: str) -> tuple[str, str | None]:
    """``name[:tag][@digest]`` -> (name, tag); a registry's port is not a tag."""
    name = reference.split("@", 1)[0]
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        return name, None
    return repository, tag


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def gateway(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return services[GATEWAY]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return load_plugins()


@pytest.fixture(scope="module")
def config(gateway: dict[str, Any], registry: PluginRegistry) -> Config:
    """ops/docker/arkrelay.toml as the container loads it, with the gateway service's
    environment (placeholder values: the real ones live in .env)."""
    environ = {name: "0123456789abcdef" * 4 for name in environment(gateway)}
    return load_config_text(
        GATEWAY_CONFIG.read_text(encoding="utf-8"),
        source=str(GATEWAY_CONFIG),
        settings_resolver=registry.settings_type,
        base_dir=Path(CONFIG_MOUNT.parent),
        environ=environ,
    )


def backend_targets(config: Config) -> Iterator[tuple[str, Any]]:
    for role, section in config.backends.items():
        yield role, section.settings


def workspace_packages() -> dict[str, Path]:
    """Every workspace member's distribution name -> its directory."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {root["project"]["name"]: ROOT}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for directory in sorted(ROOT.glob(pattern)):
            pyproject = directory / "pyproject.toml"
            if pyproject.is_file():
                name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
                packages[name] = directory
    return packages


def image_packages(stages: list[Stage]) -> list[str]:
    holders = [stage for stage in stages if PACKAGES_ARG in stage.args]
    assert len(holders) == 1, f"exactly one stage must declare ARG {PACKAGES_ARG}"
    return holders[0].args[PACKAGES_ARG].split()


# --------------------------------------------------------------------------------------------
# Images


def test_every_image_is_pinned_to_a_version(
    services: dict[str, dict[str, Any]], stages: list[Stage]
) -> None:
    stage_names = {stage.name for stage in stages}
    references = {f"service {name}": s.get("image") for name, s in services.items()}
    references |= {
        f"Dockerfile FROM {stage.name or stage.base}": stage.base
        for stage in stages
        if stage.base not in stage_names
    }
    for where, reference in references.items():
        assert reference, f"{where} names no image"
        _, tag = split_image(reference)
        assert tag is not None, f"{where}: {reference} has no tag"
        assert tag != "latest" and VERSION_TAG.fullmatch(tag), (
            f"{where}: {reference} is not pinned to a release"
        )


def test_daemon_images_are_the_pinned_releases(services: dict[str, dict[str, Any]]) -> None:
    pins = tomllib.loads(PINS.read_text(encoding="utf-8"))
    for service, (image, pin) in PINNED_IMAGES.items():
        name, tag = split_image(services[service]["image"])
        assert (name, tag) == (image, pins[pin]["tag"]), f"service {service}"


def test_gateway_image_is_built_here_and_tagged_with_its_version(
    gateway: dict[str, Any],
) -> None:
    build = gateway["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")) == DOCKERFILE
    core = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert split_image(gateway["image"])[1] == core["version"]


def test_both_stages_run_the_same_pinned_python(stages: list[Stage]) -> None:
    python = [stage.base for stage in stages if split_image(stage.base)[0] == "python"]
    assert len(python) == 2, "a build stage and the runtime stage, both on python"
    # The virtualenv copied from the build stage points at the build stage's interpreter.
    assert python[0] == python[1] == stages[-1].base
    assert re.fullmatch(r"3\.11\.\d+-slim-bookworm", split_image(python[0])[1] or "")


# --------------------------------------------------------------------------------------------
# What the image installs and how it runs


def test_image_installs_exactly_the_gateway_packages(stages: list[Stage]) -> None:
    workspace = set(workspace_packages())
    listed = image_packages(stages)
    assert len(listed) == len(set(listed)), f"{PACKAGES_ARG} lists a package twice"
    assert not set(EXCLUDED_FROM_IMAGE) - workspace, "an exclusion names no workspace package"
    assert not set(listed) - workspace, f"{PACKAGES_ARG} names packages outside the workspace"
    assert not set(listed) & set(EXCLUDED_FROM_IMAGE), "a package is both listed and excluded"
    undecided = workspace - set(listed) - set(EXCLUDED_FROM_IMAGE)
    assert not undecided, (
        f"{sorted(undecided)}: add to {PACKAGES_ARG} in the Dockerfile, or to "
        "EXCLUDED_FROM_IMAGE here with the reason"
    )


def test_install_step_takes_the_listed_packages_from_the_lock(stages: list[Stage]) -> None:
    build = next(stage for stage in stages if PACKAGES_ARG in stage.args)
    runs = " ; ".join(i.arguments for i in build.all("RUN"))
    reference = "${" + PACKAGES_ARG + "}"
    export = re.search(r"uv export ([^;]*)", runs)
    assert export, "the build stage exports its requirements from uv.lock"
    assert {"--locked", "--no-dev", "--no-emit-workspace"} <= set(export[1].split())
    assert re.search(r"for package in " + re.escape(reference) + r"; do[^;]*--package", runs)
    assert re.search(
        r"for package in " + re.escape(reference) + r"; do uv build --wheel --package", runs
    )
    assert "--require-hashes" in runs
    copies = [i.arguments for i in stages[-1].all("COPY")]
    assert any(c.startswith(f"--from={build.name} ") for c in copies), "runtime copies the build"


def test_runtime_runs_as_an_unprivileged_user(runtime: Stage) -> None:
    user = runtime.last("USER").arguments.split(":")[0]
    assert user not in {"root", "0"}
    assert any(
        re.search(rf"\buseradd\b.*\b{re.escape(user)}\b", i.arguments) for i in runtime.all("RUN")
    ), f"the runtime stage creates the user {user}"


def test_entrypoint_runs_the_mounted_config(runtime: Stage, gateway: dict[str, Any]) -> None:
    assert runtime.last("ENTRYPOINT").exec_form() == ["arkrelay"]
    assert runtime.last("CMD").exec_form() == ["run", "--config", str(CONFIG_MOUNT)]
    config_mounts = [m for m in mounts(gateway) if m.target == CONFIG_MOUNT]
    assert len(config_mounts) == 1 and config_mounts[0].read_only
    assert (ROOT / config_mounts[0].source).resolve() == GATEWAY_CONFIG


def test_healthcheck_asks_ready_on_the_http_port(runtime: Stage, config: Config) -> None:
    assert config.http is not None, "the deployment serves the HTTP API"
    probe = runtime.last("HEALTHCHECK").exec_form()
    urls = re.findall(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/\S*?)['\"]", " ".join(probe))
    assert urls == [(str(config.http.listen.port), "/ready")]
    if probe[0] in {"curl", "wget"}:
        installs = " ".join(i.arguments for i in runtime.all("RUN"))
        assert re.search(rf"apt-get install[^;&]*\b{probe[0]}\b", installs)
    else:
        assert probe[0] == "python", "the probe uses the image's own Python"


def test_pg_dump_in_the_image_is_as_new_as_the_server(
    runtime: Stage, services: dict[str, dict[str, Any]]
) -> None:
    # `arkrelay db backup` runs pg_dump, which refuses a server of a newer major version.
    installs = " ".join(i.arguments for i in runtime.all("RUN"))
    clients = {int(major) for major in re.findall(r"\bpostgresql-client-(\d+)\b", installs)}
    assert len(clients) == 1, "the runtime installs one PostgreSQL client"
    _, tag = split_image(services["postgres"]["image"])
    assert int((tag or "").split(".")[0]) == clients.pop()


def test_dockerignore_lets_in_what_the_build_needs() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", ".dockerignore is an allowlist"
    allowed = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]

    def let_in(path: str) -> bool:
        return any(path == rule or path.startswith(rule + "/") for rule in allowed)

    needed = ["pyproject.toml", "uv.lock"]
    for directory in workspace_packages().values():
        # uv checks uv.lock against every member, whether the image installs it or not.
        needed.append((directory / "pyproject.toml").relative_to(ROOT).as_posix())
    for name, directory in workspace_packages().items():
        if name in EXCLUDED_FROM_IMAGE:
            continue
        project = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))
        # The wheel is built from the package directories hatch is told about (the whole
        # member directory otherwise) and carries the readme as its description.
        targets = project.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {})
        readme = project["project"].get("readme")
        files = [
            *targets.get("wheel", {}).get("packages", ["."]),
            *([readme] if isinstance(readme, str) else []),
        ]
        needed += [(directory / f).resolve().relative_to(ROOT).as_posix() for f in files]
    assert [path for path in needed if not let_in(path)] == []
    assert not let_in(".env")


# --------------------------------------------------------------------------------------------
# The gateway's config against the services


def test_gateway_config_loads_with_the_installed_plugins(
    config: Config, registry: PluginRegistry
) -> None:
    assert registry.failures == ()
    assert config.gateway.network == "regtest"
    assert set(config.transports) == {"endpoint"}
    assert {role: s.plugin for role, s in config.backends.items()} == {
        "ark": "arkd",
        "lightning": "lnd",
        "assets": "tapd",
    }
    assert config.settlement is not None and config.settlement.plugin == "anchor"


def test_every_env_reference_is_in_the_gateway_environment(gateway: dict[str, Any]) -> None:
    referenced = set(
        re.findall(r"\"env:([A-Za-z_][A-Za-z0-9_]*)\"", GATEWAY_CONFIG.read_text(encoding="utf-8"))
    )
    assert referenced, "the config takes its secrets from the environment"
    assert referenced <= set(environment(gateway))


def test_secrets_come_from_env_file_not_from_compose(services: dict[str, dict[str, Any]]) -> None:
    for name, value in environment(services[GATEWAY]).items():
        assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:[-?][^}]*)?\}", value), (
            f"gateway's {name} must be interpolated from .env"
        )
    interpolated = set(INTERPOLATION.findall(COMPOSE.read_text(encoding="utf-8")))
    example = {
        line.partition("=")[0].strip()
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert interpolated == example, "ops/docker/env.example lists every variable compose uses"


def test_database_is_the_postgres_service(
    config: Config, gateway: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    url = make_url(config.gateway.database)
    assert url.drivername == "postgresql+psycopg"
    assert url.host in services and url.port in exposed_ports(services[url.host])
    # The password reaches libpq as PGPASSWORD, never through the config file.
    assert url.password is None and "PGPASSWORD" in environment(gateway)


def test_backend_targets_are_services_on_the_ports_they_listen_on(
    config: Config, services: dict[str, dict[str, Any]]
) -> None:
    for role, settings in backend_targets(config):
        target: HostPort = settings.target
        assert target is not None, f"backend.{role} has a target: no simulator in production"
        assert target.host in services, f"backend.{role}: {target.host} is no compose service"
        assert target.port in exposed_ports(services[target.host]), f"backend.{role}: {target}"


def test_exposed_ports_are_the_ports_the_daemons_are_told(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        told = {int(m[1]) for arg in command(service) if (m := LISTEN_FLAG.fullmatch(arg))}
        for key, value in environment(service).items():
            if key.endswith("_PORT"):
                told.add(int(value))
            elif key.endswith("_BIND"):
                told.add(int(value.rsplit(":", 1)[1]))
        assert told <= exposed_ports(service), f"service {name} listens on unexposed ports"


def test_every_port_the_gateway_listens_on_is_published(
    config: Config, gateway: dict[str, Any], runtime: Stage
) -> None:
    assert config.http is not None
    listens = [config.http.listen, config.transports["endpoint"].settings.listen]
    exposed = {int(p) for i in runtime.all("EXPOSE") for p in i.arguments.split()}
    for listen in listens:
        # Inside a container loopback is the container's own: nothing could reach it.
        assert listen.host in {"0.0.0.0", "::"}, f"{listen} is unreachable from outside"
        assert listen.port in published_ports(gateway)
        assert listen.port in exposed


def test_tls_certificates_come_from_the_daemons_volumes(
    config: Config, gateway: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    checked = 0
    for role, settings in backend_targets(config):
        cert = getattr(settings, "tls_cert", None)
        if cert is None:
            continue
        cert = PurePosixPath(cert)
        daemon = services[settings.target.host]
        [mount] = [m for m in mounts(gateway) if m.target == cert.parent]
        assert mount.named_volume and mount.read_only, f"backend.{role}: {mount}"
        [written] = [m for m in mounts(daemon) if m.source == mount.source]
        flags = command(daemon)
        assert f"--tlscertpath={written.target / cert.name}" in flags, f"backend.{role}"
        if settings.tls_server_name is None:
            # The daemon's self-signed certificate must name the host the gateway dials.
            assert f"--tlsextradomain={settings.target.host}" in flags, f"backend.{role}"
        checked += 1
    assert checked == 2, "lnd and tapd speak TLS"


def test_data_dir_is_the_gateway_volume(
    config: Config, gateway: dict[str, Any], runtime: Stage
) -> None:
    data_dir = PurePosixPath(config.gateway.data_dir)
    [mount] = [m for m in mounts(gateway) if m.target == data_dir]
    assert mount.named_volume and not mount.read_only
    declared = [json.loads(i.arguments) for i in runtime.all("VOLUME")]
    assert [str(data_dir)] in declared, "the image declares data_dir a volume"
    assert PurePosixPath(config.gateway.key_file).parent == data_dir


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    used = {
        mount.source
        for service in compose["services"].values()
        for mount in mounts(service)
        if mount.named_volume
    }
    assert used == set(compose.get("volumes") or {})


def test_healthchecks_back_every_health_condition(
    services: dict[str, dict[str, Any]], runtime: Stage
) -> None:
    without = {name for name, s in services.items() if "healthcheck" not in s}
    assert without == set(NO_HEALTHCHECK)
    reporting = set(services) - without
    if runtime.all("HEALTHCHECK"):
        # Services built from the Dockerfile inherit its HEALTHCHECK.
        reporting |= {name for name, s in services.items() if "build" in s}
    assert GATEWAY in reporting
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on an unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert dependency in reporting, (
                    f"{name} waits for {dependency} to be healthy, which it never reports"
                )


def test_gateway_waits_for_everything_it_talks_to(config: Config, gateway: dict[str, Any]) -> None:
    needed = {make_url(config.gateway.database).host}
    needed |= {settings.target.host for _, settings in backend_targets(config)}
    depends = gateway["depends_on"]
    assert set(depends) == needed
    assert {d["condition"] for d in depends.values()} == {"service_healthy"}
