"""`comanda parse`: how the bot reads messages, one JSON object per message on standard output.

When a Rasa server of this checkout is up (COMANDA_RASA_URL answers and takes COMANDA_RASA_TOKEN), the
messages go through its HTTP API (``POST /model/parse``): the model is loaded there already, so a call
takes a fraction of a second. Otherwise (or with ``--model``) the model is loaded here, in the Rasa
environment, by ``nlu_components.parse`` (about 20 s); its logs and library warnings are kept off
standard error unless it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Optional

import requests

from comanda.errors import ComandaError, ConfigError
from comanda.settings import home, setting

PROBE_SECONDS = 1.0
PARSE_SECONDS = 30.0
# The in-process fallback's environment: TensorFlow's C++ logs and Python's warnings off.
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", "LOG_LEVEL_LIBRARIES": "ERROR"}


def server_parse(url: str, token: str, texts: List[str]) -> Optional[Iterator[Dict[str, Any]]]:
    """Rasa's parse results from the server at ``url``, or None when no server of ours answers there."""
    base = url.rstrip("/")
    session = requests.Session()
    session.params = {"token": token}
    try:
        status = session.get(f"{base}/status", timeout=PROBE_SECONDS)
    except requests.RequestException:
        return None
    if status.status_code != 200:  # another checkout's server (another token), or one without the HTTP API
        return None
    return _results(session, f"{base}/model/parse", texts)


def _results(session: requests.Session, endpoint: str, texts: List[str]) -> Iterator[Dict[str, Any]]:
    for text in texts:
        try:
            answer = session.post(endpoint, json={"text": text}, timeout=PARSE_SECONDS)
        except requests.RequestException as exc:
            raise ConfigError(f"the Rasa server stopped answering at COMANDA_RASA_URL ({type(exc).__name__})") from None
        if answer.status_code != 200:
            raise ComandaError(f"the Rasa server answered HTTP {answer.status_code} to /model/parse")
        yield answer.json()


def read_texts(messages: List[str], jsonl: bool) -> List[str]:
    from nlu_components.parse import message_of

    texts = [message_of(line) for line in sys.stdin if line.strip()] if jsonl else list(messages)
    if not texts:
        raise ComandaError("give messages as arguments, or --jsonl with one message per line on stdin")
    return texts


def parse(texts: List[str], store_id: str, model: Optional[str]) -> int:
    if model is None:
        results = server_parse(setting("COMANDA_RASA_URL"), setting("COMANDA_RASA_TOKEN"), texts)
        if results is not None:
            from nlu_components.parse import business_skus, reading

            skus = business_skus(store_id)
            for text, parse_data in zip(texts, results, strict=True):
                print(json.dumps(reading(text, parse_data, skus), ensure_ascii=False), flush=True)
            return 0
    return parse_in_process(texts, store_id, model)


def parse_in_process(texts: List[str], store_id: str, model: Optional[str]) -> int:
    """Load the model in the Rasa environment; standard error is shown only when that fails."""
    from cli.runner import process_env, venv_bin

    command = [venv_bin("COMANDA_RASA_VENV", "python"), "-m", "nlu_components.parse", "--jsonl", "--store", store_id]
    done = subprocess.run(
        [*command, *(["--model", model] if model else [])],
        input="".join(json.dumps(text, ensure_ascii=False) + "\n" for text in texts),
        stderr=subprocess.PIPE,
        text=True,
        cwd=home(),
        env={**process_env(), **QUIET},
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        sys.stderr.write(errors[-1] + "\n" if errors else done.stderr)
    return done.returncode
