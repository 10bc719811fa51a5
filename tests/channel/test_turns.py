"""A custom action that fails inside a WhatsApp turn interrupts the turn (connectors/whatsapp/turns.py):
Rasa's own log line for it raises there, and only there."""

import asyncio
import inspect
import logging

import pytest
import rasa.core.processor

from connectors.whatsapp import turns


def test_rasa_still_logs_a_failed_action_as_the_channel_expects():
    assert turns.FAILED_ACTION_LOG in inspect.getsource(rasa.core.processor.MessageProcessor._run_action)
    assert rasa.core.processor.logger.name == turns.PROCESSOR_LOGGER


def rasa_runs_a_failing_action() -> None:
    """What MessageProcessor._run_action does when the action server cannot be reached."""
    try:
        raise ConnectionError("action server unreachable")
    except Exception:  # noqa: BLE001 - as Rasa catches it
        rasa.core.processor.logger.exception(
            "Encountered an exception while running action 'action_place_order'."
            "Bot will continue, but the actions events are lost. "
        )


def test_inside_a_whatsapp_turn_a_failed_action_interrupts_it():
    turns.install()
    with turns.interrupt_on_failed_action(), pytest.raises(turns.ActionFailed) as failed:
        rasa_runs_a_failing_action()
    assert "action_place_order" in str(failed.value) and isinstance(failed.value.cause, ConnectionError)


def test_elsewhere_rasa_carries_on_as_before(caplog):
    turns.install()
    with caplog.at_level(logging.ERROR, logger=turns.PROCESSOR_LOGGER):
        rasa_runs_a_failing_action()
    assert "Bot will continue" in caplog.text


def test_the_interruption_belongs_to_the_task_running_the_turn():
    turns.install()

    async def both() -> None:
        under_way = asyncio.Event()

        async def other_conversation() -> str:
            await under_way.wait()  # the WhatsApp turn has begun
            rasa_runs_a_failing_action()  # a REST or proactive turn at the same time: Rasa's behaviour
            return "carried on"

        other = asyncio.ensure_future(other_conversation())
        with turns.interrupt_on_failed_action():
            under_way.set()
            assert await asyncio.wait_for(other, timeout=10) == "carried on"  # while the turn is still under way

    asyncio.run(both())
