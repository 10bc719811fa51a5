"""The outbox keeps WhatsApp's pace: the number's throughput tier and each customer's pair rate."""

from connectors.whatsapp.pacing import PAIR_BURST, PAIR_SECONDS_PER_MESSAGE, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_customer_gets_a_burst_then_one_message_per_pace():
    clock = Clock()
    pacer = Pacer(80, clock)
    for _ in range(PAIR_BURST):
        assert pacer.throttled() == []
        pacer.take("number", "ana")
    assert pacer.throttled() == ["ana"]
    clock.now += PAIR_SECONDS_PER_MESSAGE
    assert pacer.throttled() == []
    pacer.take("number", "ana")
    assert pacer.throttled() == ["ana"]


def test_metas_pair_rate_refusal_makes_the_customer_wait_a_pace():
    clock = Clock()
    pacer = Pacer(80, clock)
    pacer.take("number", "ana")
    pacer.slow_down("ana")
    assert pacer.throttled() == ["ana"]
    clock.now += PAIR_SECONDS_PER_MESSAGE / 2
    assert pacer.throttled() == ["ana"]
    clock.now += PAIR_SECONDS_PER_MESSAGE / 2
    assert pacer.throttled() == []


def test_the_number_sends_at_most_its_tier_per_second():
    clock = Clock()
    pacer = Pacer(10, clock)
    waits = [pacer.take("number", f"customer-{i}") for i in range(30)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == 0.1 and abs(waits[29] - 2.0) < 1e-9
    assert pacer.take("other-number", "customer-x") == 0.0


def test_customers_at_full_pace_are_forgotten():
    clock = Clock()
    pacer = Pacer(80, clock)
    pacer.take("number", "ana")
    clock.now += PAIR_SECONDS_PER_MESSAGE
    assert pacer.throttled() == [] and pacer._recipients == {}
