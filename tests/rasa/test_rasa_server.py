"""The Rasa server's work off its event loop (issue 17): each next action is predicted on a thread of its own, so
the loop acknowledges webhooks meanwhile; the patched method is Rasa 3.6.21's, unchanged."""

import asyncio
import hashlib
import inspect
import threading
from types import SimpleNamespace

from rasa.core.processor import MessageProcessor
from rasa.shared.core.trackers import DialogueStateTracker

from cli import rasa_server

# sha256 of Rasa 3.6.21's MessageProcessor._run_prediction_loop: a Rasa upgrade that changes it fails here, and
# cli/rasa_server.predict_off_the_loop must be compared with the new one.
RASA_PREDICTION_LOOP = "cb30a0cbb690c571dbd33e404a16577745ad745798986b0fd314bd055893b4cf"


def test_the_patched_method_is_rasas_own():
    source = inspect.getsource(MessageProcessor._run_prediction_loop)
    assert hashlib.sha256(source.encode()).hexdigest() == RASA_PREDICTION_LOOP


class Scripted(MessageProcessor):
    """Predicts a greeting, then listening; each prediction waits until the event loop has run meanwhile."""

    def __init__(self) -> None:  # noqa: D107 - none of Rasa's model loading
        self.nlg, self.on_circuit_break = None, None
        self.loop_ran = threading.Event()
        self.predicted_on, self.loop_free_while_predicting, self.ran = [], [], []

    def _should_handle_message(self, tracker):
        return True

    def predict_next_with_tracker_if_should(self, tracker):
        self.predicted_on.append(threading.current_thread().name)
        self.loop_ran.clear()
        self.loop_free_while_predicting.append(self.loop_ran.wait(timeout=10))  # on the loop: never set
        name = "action_listen" if self.ran else "utter_greet"
        return SimpleNamespace(name=lambda: name), SimpleNamespace(is_end_to_end_prediction=False)

    async def _run_action(self, action, tracker, output_channel, nlg, prediction):
        self.ran.append(action.name())
        return action.name() != "action_listen"


def test_actions_are_predicted_on_a_thread_while_the_loop_goes_on(monkeypatch):
    monkeypatch.setattr(MessageProcessor, "_run_prediction_loop", MessageProcessor._run_prediction_loop)
    rasa_server.predict_off_the_loop()
    processor = Scripted()

    async def scenario():
        turn = asyncio.ensure_future(processor._run_prediction_loop(None, DialogueStateTracker("s", [])))
        while not turn.done():  # the loop's other work: a webhook's acknowledgement, say
            processor.loop_ran.set()
            await asyncio.sleep(0.01)
        await turn

    asyncio.run(scenario())
    assert processor.ran == ["utter_greet", "action_listen"]
    assert processor.loop_free_while_predicting == [True, True]
    assert set(processor.predicted_on) == {"rasa-predict_0"}
