"""A FAQ topic an owner added in the review inbox is answered with the answer they wrote (its response is
in the domain Rasa sends the action server); an unknown topic still asks to rephrase."""

import asyncio

from rasa_sdk.executor import CollectingDispatcher

from actions.faq import ActionAnswerFaq
from tests.helpers.actions import domain, tracker

PARKING = {"response_selector": {"faq": {"response": {"intent_response_key": "faq/parking"}}}}


def answer(responses):
    dispatcher = CollectingDispatcher()
    asyncio.run(
        ActionAnswerFaq().run(
            dispatcher, tracker(slots={"language": "en"}, latest=PARKING), {**domain(), "responses": responses}
        )
    )
    return dispatcher.messages


def test_an_owners_faq_topic_is_answered_as_written(demo):
    written = {"utter_faq/parking": [{"text": "Yes, at the corner."}], "utter_faq/hours": [{"text": "{hours}"}]}
    assert answer(written)[0]["response"] == "utter_faq/parking"
    assert answer({"utter_faq/hours": [{"text": "{hours}"}]})[0]["response"] == "utter_please_rephrase"
