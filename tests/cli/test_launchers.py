"""How `comanda run` and `comanda shell` start Rasa: no secret among the arguments, the shell on loopback."""

from __future__ import annotations

from cli.rasa_server import rasa_arguments
from cli.runner import action_server, rasa_server, shell_command


def test_the_rasa_token_is_added_inside_the_launcher_not_on_the_command_line(monkeypatch):
    monkeypatch.setenv("COMANDA_RASA_TOKEN", "the-rasa-token")
    monkeypatch.setenv("COMANDA_ACTIONS_TOKEN", "the-actions-token")
    for service in (rasa_server(), action_server()):
        assert not any("token" in argument for argument in service.argv), service.argv
    assert rasa_server().argv[1:4] == ["-m", "cli.rasa_server", "run"]
    assert rasa_arguments(["run", "--port", "5005"]) == ["run", "--port", "5005", "--auth-token", "the-rasa-token"]
    assert rasa_arguments(["shell", "--port", "5006"]) == ["shell", "--port", "5006"]


def test_the_shell_listens_on_loopback_on_the_port_it_is_given():
    command = shell_command(6123)
    assert command[1:4] == ["-m", "cli.rasa_server", "shell"]
    assert command[command.index("--port") + 1] == "6123" and command[command.index("--interface") + 1] == "127.0.0.1"


def test_the_action_server_binds_loopback_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("COMANDA_ACTIONS_HOST", raising=False)
    assert action_server().host == "127.0.0.1" and action_server().local_url.startswith("http://127.0.0.1:")
    monkeypatch.setenv("COMANDA_ACTIONS_HOST", "10.0.0.5")
    assert action_server(6000).local_url == "http://10.0.0.5:6000"
