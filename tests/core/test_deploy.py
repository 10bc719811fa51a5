"""deploy/: the compose file, the Kubernetes manifests and the balancers' configurations parse, name only
settings `comanda settings` lists, wire every secret the replicas must share, and start commands that exist.
Docker and Kubernetes do not run here; HAProxy does, and checks both of its configurations."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest
import yaml

from cli.cluster import balancer_config, ensure_haproxy
from cli.main import build_parser
from comanda.settings import SETTINGS
from tests.helpers.paths import ROOT

DEPLOY = ROOT / "deploy"
KINDS = ("rasa", "actions", "backoffice")
# Set by `comanda run` for Rasa itself, not Comanda settings.
NOT_SETTINGS = {"RASA_TELEMETRY_ENABLED", "SQLALCHEMY_SILENCE_UBER_WARNING"}
# URLs that carry passwords in production, though `comanda settings` shows their local defaults.
SECRET_URLS = {"COMANDA_DATABASE_URL", "COMANDA_REDIS_URL"}


def shared_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Set[str]:
    """Secrets whose default each machine invents for itself (two fresh homes get two values): replicas
    on several machines would disagree unless they are set. Plus the database, Redis and Meta's keys."""
    values = []
    for home in ("a", "b"):
        monkeypatch.setenv("COMANDA_HOME", str(tmp_path / home))
        values.append({s.name: s.default() for s in SETTINGS.values() if s.secret})
    invented = {name for name in values[0] if values[0][name] != values[1][name]}
    assert {"COMANDA_RASA_TOKEN", "COMANDA_ACTIONS_TOKEN"} <= invented
    return invented | SECRET_URLS | {"WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN"}


def env_file(path: Path) -> Dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert all(len(pair) == 2 for pair in pairs), path
    return {key: value for key, value in pairs}


def compose() -> Dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def kubernetes() -> List[Dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((DEPLOY / name).read_text())]


def of_kind(docs: List[Dict[str, Any]], kind: str) -> Dict[str, Dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def test_the_secrets_file_holds_every_shared_secret_and_only_settings(tmp_path, monkeypatch):
    secrets = env_file(DEPLOY / "secrets.env.example")
    assert set(secrets) <= set(SETTINGS)
    assert shared_secrets(tmp_path, monkeypatch) <= set(secrets)
    # every secret a deployment may need is there to fill in (the cluster's local ones aside)
    assert {s.name for s in SETTINGS.values() if s.secret and "CLUSTER" not in s.name} <= set(secrets)
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert kustomization["secretGenerator"] == [{"name": "comanda-secrets", "envs": ["secrets.env"]}]
    assert "deploy/secrets.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_compose_wires_every_setting_and_secret_into_every_replica():
    services = compose()["services"]
    secrets = env_file(DEPLOY / "secrets.env.example")
    for kind in (*KINDS, "migrate"):
        service = services[kind]
        assert service["env_file"] == ["secrets.env"], kind
        names = set(service["environment"])
        assert names <= set(SETTINGS) | NOT_SETTINGS, names - set(SETTINGS)
        assert not {n for n in names if SETTINGS[n].secret or n in SECRET_URLS}, "secrets belong in secrets.env"
        assert not names & set(secrets)
    for kind in KINDS:
        assert services[kind]["deploy"]["replicas"] >= 2
        assert services[kind]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    # the processes reach each other through the balancer, whose ports are the services' own
    environment = services["rasa"]["environment"]
    assert environment["COMANDA_RASA_URL"] == "http://balancer:5005"
    assert environment["COMANDA_ACTIONS_URL"] == "http://balancer:5055/webhook"
    assert environment["COMANDA_SIMULATOR"] == "0"


def test_kubernetes_wires_every_setting_and_secret_into_every_replica():
    docs = kubernetes()
    [settings] = of_kind(docs, "ConfigMap").values()
    names = set(settings["data"])
    assert names <= set(SETTINGS), names - set(SETTINGS)
    assert not {n for n in names if SETTINGS[n].secret or n in SECRET_URLS}, "secrets belong in secrets.env"
    deployments, services = of_kind(docs, "Deployment"), of_kind(docs, "Service")
    pods = [deployments[kind]["spec"]["template"]["spec"] for kind in KINDS]
    pods.append(of_kind(docs, "Job")["comanda-migrate"]["spec"]["template"]["spec"])
    for pod in pods:
        [container] = pod["containers"]
        assert container["envFrom"] == [
            {"configMapRef": {"name": "comanda-settings"}},
            {"secretRef": {"name": "comanda-secrets"}},
        ]
        assert not container.get("env")  # nothing set beside the two
    for kind in KINDS:
        deployment = deployments[kind]
        assert deployment["spec"]["replicas"] >= 2
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels == services[kind]["spec"]["selector"]
        [port] = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
        assert services[kind]["spec"]["ports"][0]["targetPort"] == port["name"]
    # the URLs in the settings name the Services, on their ports
    assert settings["data"]["COMANDA_RASA_URL"] == f"http://rasa:{services['rasa']['spec']['ports'][0]['port']}"
    assert settings["data"]["COMANDA_ACTIONS_URL"] == (
        f"http://actions:{services['actions']['spec']['ports'][0]['port']}/webhook"
    )
    [ingress] = of_kind(docs, "Ingress").values()
    routes = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert routes == {"/webhooks/whatsapp": "rasa", "/": "backoffice"}


def test_the_commands_they_start_exist():
    docs = kubernetes()
    commands = [s["command"] for s in compose()["services"].values() if "command" in s]
    commands += [
        d["spec"]["template"]["spec"]["containers"][0]["command"] for d in docs if d["kind"] in ("Deployment", "Job")
    ]
    assert len(commands) == 8
    for command in commands:
        if command[0] == "comanda":
            build_parser().parse_args(command[1:])  # exits (SystemExit) on an unknown command or option
        else:
            assert command[:3] == [".venv-actions/bin/python", "-m", "backoffice"] and "--host" in command
    assert "comanda" in (DEPLOY / "Dockerfile").read_text()


def test_haproxy_accepts_both_balancer_configurations(tmp_path):
    haproxy = ensure_haproxy()
    rendered = tmp_path / "cluster.cfg"
    rendered.write_text(
        balancer_config({"rasa": 15005, "actions": 15055, "backoffice": 15080}, {k: [16001, 16002] for k in KINDS})
    )
    assert "server sim-2 127.0.0.1:16002 check backup" in rendered.read_text()
    for config in (rendered, DEPLOY / "haproxy" / "compose.cfg"):
        check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
