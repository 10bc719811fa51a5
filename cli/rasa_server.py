"""`python -m cli.rasa_server run|shell ARGS…`: Rasa's own command line as `comanda run` starts it (in
COMANDA_RASA_VENV), with what must not be on a command line taken from Comanda's settings.

- The HTTP API token (COMANDA_RASA_TOKEN) reaches `rasa run` inside this process, never through the
  arguments of one: `ps` shows every argument to every user of the machine.
- Request bodies are capped (COMANDA_RASA_MAX_BODY_BYTES, through SANIC_REQUEST_MAX_SIZE, which Sanic
  reads when Rasa builds its app): a larger one gets 413 before it is read, signed or not.
- A model loaded through the HTTP API (``PUT /model``, `comanda train`) is read on a worker thread: Rasa 3.6
  reads it on the server's event loop, where every webhook and turn would wait for it (tens of seconds on
  a busy machine). The old model answers until the new one is ready, then Rasa swaps them as it always does.
- Each next action of a turn is predicted on a thread of its own: Rasa 3.6 runs the policies (TED, rules,
  memoization: tens of milliseconds per action, several actions per turn) synchronously on the event loop
  that also acknowledges the webhooks, which waited for them (issue 17).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, List, Optional

from comanda.concurrency import in_thread
from comanda.settings import setting, setting_int

if TYPE_CHECKING:
    from rasa.core.agent import Agent

log = logging.getLogger("rasa.core.processor")


def rasa_arguments(args: List[str]) -> List[str]:
    """Rasa's arguments: `run` gets the API token."""
    if args[:1] == ["run"]:
        return [*args, "--auth-token", setting("COMANDA_RASA_TOKEN")]
    return list(args)


def load_models_off_the_loop() -> None:
    """``rasa.server._load_agent`` (the HTTP API loading a model) run in a thread with a loop of its own."""
    import rasa.server

    load = rasa.server._load_agent

    async def load_in_thread(*args: Any, **kwargs: Any) -> Agent:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(load(*args, **kwargs)))

    rasa.server._load_agent = load_in_thread


PREDICTIONS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rasa-predict")  # one at a time, as on the loop


def predict_off_the_loop() -> None:
    """``MessageProcessor._run_prediction_loop`` of Rasa 3.6.21 (tests/rasa/test_rasa_server.py checks its
    source is unchanged), the prediction awaited on ``PREDICTIONS`` instead of run on the loop."""
    from rasa.core.channels.channel import OutputChannel
    from rasa.core.processor import MessageProcessor
    from rasa.exceptions import ActionLimitReached
    from rasa.shared.core.trackers import DialogueStateTracker

    async def run_prediction_loop(
        self: MessageProcessor, output_channel: OutputChannel, tracker: DialogueStateTracker
    ) -> None:
        should_predict_another_action = True
        while should_predict_another_action and self._should_handle_message(tracker):
            try:
                action, prediction = await in_thread(
                    self.predict_next_with_tracker_if_should, tracker, executor=PREDICTIONS
                )
            except ActionLimitReached:
                log.warning("Circuit breaker tripped. Stopped predicting more actions for '%s'.", tracker.sender_id)
                if self.on_circuit_break:
                    self.on_circuit_break(tracker, output_channel, self.nlg)
                break
            if prediction.is_end_to_end_prediction:
                tracker = await self.run_action_extract_slots(output_channel, tracker)
            should_predict_another_action = await self._run_action(
                action, tracker, output_channel, self.nlg, prediction
            )

    MessageProcessor._run_prediction_loop = run_prediction_loop  # type: ignore[method-assign]


def main(argv: Optional[List[str]] = None) -> None:
    args = rasa_arguments(sys.argv[1:] if argv is None else argv)
    os.environ["SANIC_REQUEST_MAX_SIZE"] = str(setting_int("COMANDA_RASA_MAX_BODY_BYTES"))
    sys.argv = ["rasa", *args]  # Python's copy only: the process's command line (/proc/…/cmdline) is unchanged

    from rasa.__main__ import main as rasa_main

    load_models_off_the_loop()
    predict_off_the_loop()
    rasa_main()


if __name__ == "__main__":
    main()
