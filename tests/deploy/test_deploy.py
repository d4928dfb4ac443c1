"""The deployment files in deploy/, checked as far as this machine allows (no Docker engine,
no cluster): every file parses; the Kubernetes manifests, the compose file, the Dockerfile and
the systemd unit agree with each other and with the CLI; the configs they carry pass anomalyd's
own validation; the Prometheus rules pass promtool and its unit tests; and a live worker's
/metrics passes `promtool check metrics` and exports every metric the dashboard and the rules
use."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from anomalyd import cli
from anomalyd.config import ConfigError, EmailReceiver, WebhookReceiver, parse_config
from anomalyd.metrics import Metrics
from anomalyd.worker.kafka.admin import free_port
from anomalyd.worker.kafka.broker import EmbeddedBroker
from helpers import REPO, WorkerProcess, eventually, produce, worker_config

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
PROMTOOL_HINT = (
    "promtool is not installed (Debian/Ubuntu: apt-get install prometheus; .ci/run installs it"
    " when it can)"
)
METRIC = re.compile(r"\banomalyd_[a-z_]+")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# --- helpers --------------------------------------------------------------------------------


def yaml_docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> dict[str, dict[str, Any]]:
    """The Kubernetes objects of deploy/kubernetes, by kind (one of each)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml_docs(path):
            assert doc["kind"] not in by_kind, f"two {doc['kind']} objects"
            by_kind[doc["kind"]] = doc
    return by_kind


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    [main] = containers
    return main


def exported_names() -> set[str]:
    """Every series name the daemon's registry exposes: counters as `_total`, histograms as
    `_bucket`/`_sum`/`_count`, gauges as they are (labelled ones before any child exists)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes[family.type]
    }
    assert "anomalyd_events_total" in names
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "anomalyd-dashboard.json").read_text()
    )
    return loaded


def dashboard_queries() -> list[str]:
    board = dashboard()
    queries = [
        target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


def rules() -> list[dict[str, Any]]:
    [doc] = yaml_docs(DEPLOY / "prometheus" / "anomalyd-rules.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


def used_metrics() -> dict[str, set[str]]:
    """The anomalyd_* names in every PromQL expression of the dashboard and of the rules."""
    return {
        "dashboard": {name for query in dashboard_queries() for name in METRIC.findall(query)},
        "rules": {name for rule in rules() for name in METRIC.findall(rule["expr"])},
    }


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as compose would pass it with nothing set on the host:
    `${VAR:-default}` becomes the default."""
    return {
        str(key): VARIABLE.sub(lambda m: m.group(2) or "", str(value))
        for key, value in (service.get("environment") or {}).items()
    }


class Dockerfile:
    """The instructions of deploy/Dockerfile, by stage."""

    def __init__(self, path: Path) -> None:
        self.stages: list[list[tuple[str, str]]] = []
        logical = ""
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#") or not line.strip():
                continue  # comments may sit inside a continued instruction too
            if line.endswith("\\"):
                logical += line[:-1] + " "
                continue
            logical += line
            keyword, _, rest = logical.strip().partition(" ")
            if keyword.upper() == "FROM":
                self.stages.append([])
            elif self.stages:
                self.stages[-1].append((keyword.upper(), rest.strip()))
            logical = ""

    @property
    def runtime(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def last(self, keyword: str) -> str:
        values = [rest for kw, rest in self.runtime if kw == keyword]
        assert values, f"no {keyword} in the runtime stage"
        return values[-1]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for keyword, rest in self.runtime:
            if keyword == "ENV":
                env.update(token.split("=", 1) for token in shlex.split(rest))  # type: ignore[misc]
        return env

    def healthcheck(self) -> list[str]:
        _, _, command = self.last("HEALTHCHECK").partition(" CMD ")
        argv: list[str] = json.loads(command)
        return argv

    def copy_sources(self) -> list[str]:
        sources = []
        for stage in self.stages:
            for keyword, rest in stage:
                if keyword == "COPY" and "--from=" not in rest:
                    args = [a for a in shlex.split(rest) if not a.startswith("--")]
                    sources.extend(args[:-1])
        return sources


def systemd_unit() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in (DEPLOY / "anomalyd.service").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip(PROMTOOL_HINT)
    return binary


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, **kwargs)


# --- every file -----------------------------------------------------------------------------


DATA_FILES = sorted(path for path in DEPLOY.rglob("*") if path.suffix in {".yml", ".yaml", ".json"})


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_and_json_file_parses(path: Path) -> None:
    if path.suffix == ".json":
        assert json.loads(path.read_text())
    else:
        assert yaml_docs(path), f"{path} holds no document"


def test_the_files_this_suite_checks_exist() -> None:
    expected = {
        "Dockerfile",
        "docker-compose.yml",
        "compose/anomalyd.yaml",
        "anomalyd.service",
        "README.md",
        "grafana/anomalyd-dashboard.json",
        "prometheus/anomalyd-rules.yml",
        "prometheus/anomalyd-rules.test.yml",
        "kubernetes/kustomization.yaml",
    }
    present = {str(path.relative_to(DEPLOY)) for path in DEPLOY.rglob("*") if path.is_file()}
    assert expected <= present


# --- Kubernetes -----------------------------------------------------------------------------


def test_kubernetes_objects_have_the_expected_kinds_and_api_versions() -> None:
    objects = manifests()
    assert {kind: obj["apiVersion"] for kind, obj in objects.items()} == {
        "ConfigMap": "v1",
        "Secret": "v1",
        "Deployment": "apps/v1",
        "Service": "v1",
        "PodDisruptionBudget": "policy/v1",
    }
    for obj in objects.values():
        assert obj["metadata"]["name"]


def test_kustomization_lists_every_manifest() -> None:
    [kustomization] = yaml_docs(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    [image] = kustomization["images"]
    assert image["name"] == container(manifests()["Deployment"])["image"].split(":")[0]


def test_deployment_runs_replicas_with_probes_on_the_http_port() -> None:
    deployment = manifests()["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    main = container(deployment)
    assert main["args"] == ["worker"]
    [port] = main["ports"]
    assert port == {"name": "http", "containerPort": 6066, "protocol": "TCP"}
    probes = {name: main[name]["httpGet"] for name in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = main["readinessProbe"]["httpGet"]
    assert {name: (probe["path"], probe["port"]) for name, probe in probes.items()} == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }
    resources = main["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_deployment_runs_as_non_root_on_a_read_only_root_filesystem() -> None:
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    main = container(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    # The image's USER is the same uid: runAsNonRoot can check it, files are owned by it.
    image_user = Dockerfile(DEPLOY / "Dockerfile").last("USER").split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == image_user
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # What the worker writes goes to emptyDirs: its data_dir and /tmp.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in main["volumeMounts"]}
    env = {item["name"]: item["value"] for item in main["env"]}
    for path in (env["ANOMALYD_APP__DATA_DIR"], "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], path


def test_deployment_mounts_the_configmap_where_anomalyd_config_points() -> None:
    objects = manifests()
    main = container(objects["Deployment"])
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    env = {item["name"]: item["value"] for item in main["env"]}
    config_path = Path(env["ANOMALYD_CONFIG"])
    mounts = {mount["name"]: mount["mountPath"] for mount in main["volumeMounts"]}
    [volume] = [volume for volume in pod["volumes"] if "configMap" in volume]
    assert volume["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    assert Path(mounts[volume["name"]]) == config_path.parent
    [item] = volume["configMap"]["items"]
    assert item["path"] == config_path.name
    assert item["key"] in objects["ConfigMap"]["data"]
    assert env["ANOMALYD_HTTP__BIND"] == "0.0.0.0"
    [source] = main["envFrom"]
    assert source["secretRef"]["name"] == objects["Secret"]["metadata"]["name"]


def test_service_and_pdb_select_the_deployments_pods() -> None:
    objects = manifests()
    deployment = objects["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    service = objects["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 6066, "http")
    pdb = objects["PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == selector


def test_configmap_config_passes_anomalyds_validation_with_the_secrets_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = manifests()
    text = objects["ConfigMap"]["data"]["anomalyd.yaml"]
    secrets = objects["Secret"]["stringData"]
    main = container(objects["Deployment"])
    # The container's env: ANOMALYD_* overrides are read from the process environment.
    for item in main["env"]:
        monkeypatch.setenv(item["name"], item["value"])
    config = parse_config(text, source="configmap", environ=secrets)
    assert not config.kafka.is_embedded
    assert config.http.port == main["ports"][0]["containerPort"]
    assert config.http.bind == "0.0.0.0"
    assert config.app.data_dir == "/var/lib/anomalyd"
    # Replicas split the alerts topic by alertname: a group must not span two of them.
    assert config.route is not None
    assert "alertname" in (config.route.group_by or [])
    # Every ${VAR} the config needs is in the Secret, and the Secret holds nothing unused.
    needed = {name for name, default in VARIABLE.findall(text) if not default}
    assert needed == set(secrets)
    with pytest.raises(ConfigError) as missing:
        parse_config(text, source="configmap", environ={})
    unset = {
        match.group(1)
        for problem in missing.value.problems
        if (match := re.search(r"environment variable (\w+) is not set", problem))
    }
    assert unset == needed


def test_secret_values_are_marked_placeholders() -> None:
    for key, value in manifests()["Secret"]["stringData"].items():
        if value.startswith("whsec_"):
            value = base64.b64decode(value.removeprefix("whsec_")).decode()
        assert "REPLACE" in value, f"{key} does not look like a placeholder"


def test_kustomize_renders_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` not checked")
    result = run([kubectl, "kustomize", str(K8S)])
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted(doc["kind"] for doc in rendered) == sorted(manifests())
    [deployment] = [doc for doc in rendered if doc["kind"] == "Deployment"]
    assert container(deployment)["image"] == "registry.example.com/anomalyd:0.1.0"


# --- docker compose -------------------------------------------------------------------------


def test_compose_runs_kafka_in_kraft_mode_with_mailpit_and_a_webhook_echo() -> None:
    services = compose()["services"]
    assert {"kafka", "anomalyd", "mailpit", "webhook-echo"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in json.dumps(services).lower()
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert services["webhook-echo"]["image"].startswith("mendhak/http-https-echo:")
    for name, service in services.items():
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), f"{name} publishes {published} widely"


def test_compose_services_have_healthchecks_and_wait_for_their_dependencies() -> None:
    services = compose()["services"]
    for name, service in services.items():
        check = service["healthcheck"]
        assert check.get("disable") or check["test"], name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services
            assert condition["condition"] == "service_healthy", (name, dependency)
            assert not services[dependency]["healthcheck"].get("disable"), dependency
    assert set(services["anomalyd"]["depends_on"]) == {"kafka", "mailpit", "webhook-echo"}


def test_compose_builds_the_dockerfile_and_mounts_its_config() -> None:
    anomalyd = compose()["services"]["anomalyd"]
    build = anomalyd["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    image_config = Dockerfile(DEPLOY / "Dockerfile").env()["ANOMALYD_CONFIG"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in anomalyd["volumes"])
    assert mounts == {"./compose/anomalyd.yaml": image_config}
    assert anomalyd["command"] == ["worker"]


def test_compose_config_passes_validation_and_points_at_the_compose_services() -> None:
    services = compose()["services"]
    env = compose_env(services["anomalyd"])
    config = parse_config(
        (DEPLOY / "compose" / "anomalyd.yaml").read_text(), source="compose", environ=env
    )
    # The broker address is the one kafka advertises to the compose network.
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert config.kafka.brokers == ["kafka:9092"]
    assert "PLAINTEXT://kafka:9092" in advertised.split(",")
    receivers = {receiver.name: receiver for receiver in config.receivers}
    mail = receivers["mail"]
    assert isinstance(mail, EmailReceiver)
    assert (mail.host, mail.port) == ("mailpit", 1025)
    echo = receivers["echo"]
    assert isinstance(echo, WebhookReceiver)
    url = urlsplit(echo.url)
    assert url.hostname == "webhook-echo"
    assert str(url.port) == str(services["webhook-echo"]["environment"]["HTTP_PORT"])
    assert echo.signing_secrets  # the demo shows signed webhooks


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_and_runs_unprivileged() -> None:
    dockerfile = Dockerfile(DEPLOY / "Dockerfile")
    assert len(dockerfile.stages) >= 2
    user = dockerfile.last("USER").split(":")[0]
    assert user not in {"root", "0"}
    assert dockerfile.last("ENTRYPOINT") == '["anomalyd"]'
    assert dockerfile.last("CMD") == '["worker"]'
    assert dockerfile.last("EXPOSE") == "6066"
    env = dockerfile.env()
    assert env["ANOMALYD_CONFIG"] == "/etc/anomalyd/anomalyd.yaml"
    assert env["ANOMALYD_HTTP__BIND"] == "0.0.0.0"
    healthcheck = dockerfile.healthcheck()
    assert healthcheck[:2] == ["python", "-c"]
    assert "/healthz" in healthcheck[2]


def test_dockerfile_copies_files_that_exist_and_are_in_the_build_context() -> None:
    sources = Dockerfile(DEPLOY / "Dockerfile").copy_sources()
    assert {"pyproject.toml", "README.md", "daemon", "config/anomalyd.yaml"} <= set(sources)
    ignore = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in sources:
        assert (REPO / source).exists(), source
        parts = Path(source).parts
        for prefix in ("/".join(parts[: i + 1]) for i in range(len(parts))):
            assert not any(fnmatch(prefix, pattern) for pattern in ignore), (source, prefix)


def test_the_images_built_in_config_passes_validation_with_the_images_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in Dockerfile(DEPLOY / "Dockerfile").env().items():
        if key.startswith("ANOMALYD_") and key != "ANOMALYD_CONFIG":
            monkeypatch.setenv(key, value)
    config = parse_config((REPO / "config" / "anomalyd.yaml").read_text(), environ={})
    assert config.http.bind == "0.0.0.0"
    assert config.app.data_dir == "/var/lib/anomalyd"


# --- systemd --------------------------------------------------------------------------------


def test_systemd_unit_matches_the_command_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unit = systemd_unit()
    [start] = unit["ExecStart"]
    binary, *args = start.split()
    assert args == ["worker"]
    assert binary.endswith("/anomalyd")
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"], "the worker reloads on SIGHUP"
    assert unit["RestartPreventExitStatus"] == [str(cli.EXIT_CONFIG)]
    assert unit["Restart"] == ["on-failure"]
    env = dict(item.split("=", 1) for item in unit["Environment"])
    assert env["ANOMALYD_CONFIG"] == "/etc/anomalyd/anomalyd.yaml"
    assert env["ANOMALYD_APP__DATA_DIR"] == f"/var/lib/{unit['StateDirectory'][0]}"

    # `anomalyd check-config` without a path checks $ANOMALYD_CONFIG: 0 if valid, 78 if not.
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text((DEPLOY / "compose" / "anomalyd.yaml").read_text())
    bad.write_text("app: {idd: x}\n")
    monkeypatch.setenv(
        "ECHO_WEBHOOK_SECRET", compose_env(compose()["services"]["anomalyd"])["ECHO_WEBHOOK_SECRET"]
    )
    monkeypatch.setenv("ANOMALYD_CONFIG", str(good))
    assert cli.main(["check-config"]) == cli.EXIT_OK
    monkeypatch.setenv("ANOMALYD_CONFIG", str(bad))
    assert cli.main(["check-config"]) == cli.EXIT_CONFIG == 78
    with pytest.raises(SystemExit) as help_:
        cli.main(["worker", "--help"])
    assert help_.value.code == 0
    capsys.readouterr()


def test_systemd_does_not_restart_a_worker_whose_config_is_bad(tmp_path: Path) -> None:
    """systemd applies RestartPreventExitStatus to the main process only: a config check
    in ExecStartPre that exits 78 is restarted every RestartSec, for ever. So the check is
    the main process's own: `anomalyd worker` exits 78 on every config check-config
    refuses, those only building the receivers shows (a ca_file that is not PEM) too."""
    unit = systemd_unit()
    assert str(cli.EXIT_CONFIG) in unit["RestartPreventExitStatus"][0].split()
    for hook in ("ExecStartPre", "ExecStartPost", "ExecCondition"):
        assert not any("anomalyd" in line for line in unit.get(hook, [])), (
            f"{hook} runs anomalyd: its exit 78 would not prevent a restart"
        )
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    bad = tmp_path / "bad.yaml"
    mail = {
        "type": "email",
        "name": "mail",
        "smarthost": "127.0.0.1:25",
        "from": "a@example.com",
        "to": ["b@example.com"],
        "ca_file": str(junk),
    }
    bad.write_text(yaml.safe_dump({"kafka": {"brokers": [f"127.0.0.1:{free_port()}"]},
                                   "receivers": [mail]}))  # fmt: skip
    worker = run([sys.executable, "-m", "anomalyd", "worker", "--config", str(bad)], cwd=REPO)
    assert worker.returncode == cli.EXIT_CONFIG, worker.stderr[-2000:]
    assert "receivers[0].ca_file: not PEM certificates" in worker.stderr


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify wants the binaries to exist: point ExecStart at this checkout's anomalyd.
    text = (DEPLOY / "anomalyd.service").read_text()
    local = Path(sys.executable).with_name("anomalyd")
    unit = tmp_path / "anomalyd.service"
    unit.write_text(text.replace("/opt/anomalyd/venv/bin/anomalyd", str(local)))
    verified = run([analyze, "verify", str(unit)])
    assert verified.returncode == 0, verified.stderr
    assert "anomalyd.service" not in verified.stderr, verified.stderr


# --- Grafana --------------------------------------------------------------------------------


def test_grafana_dashboard_is_importable_and_uses_a_prometheus_datasource_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["uid"]
    assert board["title"]
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert METRIC.search(target["expr"]), (panel["title"], target["expr"])


def test_dashboard_covers_the_daemons_metrics() -> None:
    wanted = {
        "anomalyd_events_total",
        "anomalyd_invalid_events_total",
        "anomalyd_alerts_total",
        "anomalyd_deliveries_total",
        "anomalyd_notifications_dead_lettered_total",
        "anomalyd_delivery_seconds_bucket",
        "anomalyd_event_latency_seconds_bucket",
        "anomalyd_streams",
        "anomalyd_drifting_streams",
        "anomalyd_ready",
        "anomalyd_notify_queued_alerts",
    }
    assert wanted <= used_metrics()["dashboard"]


@pytest.mark.parametrize("where", ["dashboard", "rules"])
def test_promql_uses_only_metrics_the_daemon_exports(where: str) -> None:
    """Offline, from the registry's definitions; the live test checks a real /metrics."""
    assert used_metrics()[where] <= exported_names()


# --- Prometheus rules -----------------------------------------------------------------------


def test_rules_cover_the_daemons_failure_modes() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert {
        "AnomalydNoEvents",
        "AnomalydDeliveryFailures",
        "AnomalydNotificationsDeadLettered",
        "AnomalydWorkerNotReady",
        "AnomalydEventLatencyHigh",
    } <= set(by_name)
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


def test_promtool_checks_the_rules() -> None:
    result = run([promtool(), "check", "rules", str(DEPLOY / "prometheus" / "anomalyd-rules.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = run(
        [promtool(), "test", "rules", "anomalyd-rules.test.yml"], cwd=DEPLOY / "prometheus"
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- a live worker --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker for the module, with a receiver that works (log) and one that cannot (a
    webhook to a closed port), so delivery, retry and dead-letter series all exist."""
    tmp_path = tmp_path_factory.mktemp("worker")
    path, config = worker_config(
        tmp_path,
        broker.bootstrap,
        rules=[{"name": "ValueHigh", "type": "above", "threshold": 500, "severity": "critical"}],
        receivers=[
            {"name": "console", "type": "log"},
            {"name": "broken", "type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x"},
        ],
    )
    process = WorkerProcess(path, config, tmp_path / "worker.log").start()
    yield process
    process.stop()


@pytest.mark.integration
async def test_live_metrics_pass_promtool_and_export_what_dashboard_and_rules_use(
    broker: EmbeddedBroker, worker: WorkerProcess
) -> None:
    await worker.wait_ready()
    start = time.time()
    events: list[bytes | dict[str, Any]] = [
        {"stream": "deploy.check", "ts": start + i, "value": value}
        for i, value in enumerate([100, 120, 900, 110, 105])
    ]
    events.append(b"not json")
    await produce(broker.bootstrap, worker.config["topics"]["events"], events)

    needed = used_metrics()["dashboard"] | used_metrics()["rules"]

    def scraped() -> str | None:
        status, body = worker.get("/metrics")
        text = body.decode()
        exposed = {line.split("{")[0].split(" ")[0] for line in text.splitlines()}
        if status == 200 and needed <= exposed and "anomalyd_delivery_seconds_bucket" in text:
            return text
        return None

    metrics = await eventually(
        scraped, timeout=60, interval=0.2, what=f"every metric of {sorted(needed)} in /metrics"
    )
    assert 'anomalyd_notifications_dead_lettered_total{receiver="broken"} 1.0' in metrics
    assert 'anomalyd_invalid_events_total{reason="invalid_json"} 1.0' in metrics

    binary = promtool()
    result = run([binary, "check", "metrics"], input=metrics)
    # promtool exits 1 for lint findings too; an unparsable exposition says "error".
    assert "error while linting" not in result.stderr + result.stdout, result.stderr
    lint = sorted(set((result.stdout + result.stderr).strip().splitlines()))
    assert result.returncode == 0, "promtool check metrics:\n" + "\n".join(lint)


@pytest.mark.integration
async def test_container_healthchecks_and_probe_paths_answer_on_a_live_worker(
    worker: WorkerProcess,
) -> None:
    """The Dockerfile's HEALTHCHECK and compose's /readyz check, run as the container runs
    them (ANOMALYD_HTTP__PORT says where), and the Kubernetes probes' paths."""
    await worker.wait_ready()
    port = str(worker.config["http"]["port"])
    env = {**os.environ, "ANOMALYD_HTTP__PORT": port}
    compose_check = compose()["services"]["anomalyd"]["healthcheck"]["test"]
    assert compose_check[:2] == ["CMD", "python"]
    for argv in (Dockerfile(DEPLOY / "Dockerfile").healthcheck(), compose_check[1:]):
        result = run([sys.executable, *argv[1:]], env=env)
        assert result.returncode == 0, (argv, result.stderr)
    # And they fail when nothing answers.
    closed = {**env, "ANOMALYD_HTTP__PORT": str(free_port())}
    result = run([sys.executable, *Dockerfile(DEPLOY / "Dockerfile").healthcheck()[1:]], env=closed)
    assert result.returncode != 0
    main = container(manifests()["Deployment"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker.get(main[probe]["httpGet"]["path"])[0] == 200, probe


# --- Kafka ACLs -----------------------------------------------------------------------------


def acl_grants(**env: str) -> list[tuple[str, frozenset[str], str]]:
    """What `kafka/acls.sh` grants, as (principal, operations, resource), its commands
    printed instead of run."""
    script = DEPLOY / "kafka" / "acls.sh"
    done = run(["bash", str(script)], env={**os.environ, "KAFKA_ACLS": "echo", **env})
    assert done.returncode == 0, done.stderr
    grants = []
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        principal = words[words.index("--allow-principal") + 1]
        operations = frozenset(w for p, w in itertools.pairwise(words) if p == "--operation")
        kind = next(w for w in words if w in ("--topic", "--group", "--cluster"))
        name = words[words.index(kind) + 1] if kind != "--cluster" else ""
        prefixed = "prefixed:" if "prefixed" in words else ""
        grants.append((principal, operations, f"{kind[2:]}:{prefixed}{name}"))
    return grants


def test_kafka_acls_let_only_the_daemon_write_the_topics_it_trusts() -> None:
    from anomalyd.config.schema import TopicsSection

    grants = acl_grants(BOOTSTRAP="kafka:9093", PRODUCERS="User:shop", READERS="User:grafana")
    writers: dict[str, set[str]] = {}
    for principal, operations, resource in grants:
        if operations & {"All", "Write"}:
            writers.setdefault(resource, set()).add(principal)
    every_topic = {f"topic:{name}" for name in TopicsSection().model_dump().values()}
    assert {r for r, w in writers.items() if "User:anomalyd" in w} >= every_topic
    assert "topic:prefixed:anomalyd-" in writers, "<app.id>-state and -events-by-stream"
    assert {r for r, w in writers.items() if w - {"User:anomalyd"}} == {"topic:events"}
    assert writers["topic:events"] == {"User:anomalyd", "User:shop"}
    assert {ops for p, ops, _ in grants if p == "User:grafana"} == {frozenset({"Read", "Describe"})}
