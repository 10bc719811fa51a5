"""The simulator's chat shows a conversation's messages in the order the Graph API received them, even
when an earlier message's status changes after a later message arrived (issue 11 item 5: "Anything
else?" shown above "✅ Added" when the page's poll saw both at once)."""

from backoffice.simulator.state import Simulator

CENTRO, WA_ID = "106540352242922", "5215512345678"


def test_a_poll_lists_new_messages_in_arrival_order_whatever_their_later_statuses():
    sim = Simulator()
    sim.add("wamid.in", CENTRO, WA_ID, "in", {"type": "text"}, "received")
    seen = [r.id for r in sim.chat(CENTRO, WA_ID)]
    added = sim.add("wamid.added", CENTRO, WA_ID, "out", {"type": "text"}, "accepted")
    anything_else = sim.add("wamid.anything-else", CENTRO, WA_ID, "out", {"type": "interactive"}, "accepted")
    sim.set_status(added.id, "sent")  # Meta's "sent" for the first reply comes after the second was sent
    changed = sim.chat(CENTRO, WA_ID, after=max(r.seq for r in sim.chat(CENTRO, WA_ID) if r.id in seen))
    assert [r.id for r in changed] == [added.id, anything_else.id]
    sim.set_status(anything_else.id, "read")
    sim.set_status(added.id, "read")
    assert [r.id for r in sim.chat(CENTRO, WA_ID)] == ["wamid.in", added.id, anything_else.id]
