from __future__ import annotations

import msgspec
import pytest

from postwire_contracts import messages, topology
from postwire_contracts.examples import EXAMPLES
from postwire_contracts.status import Channel, Status, can_transition, resolve, webhook_event_type

DECODERS = {
    "send.": messages.send_decoder,
    "event.": messages.event_decoder,
    "notify.": messages.notification_decoder,
}


@pytest.mark.parametrize("tag", sorted(EXAMPLES))
def test_every_example_payload_still_decodes_and_round_trips(tag: str) -> None:
    decoder = next(d for prefix, d in DECODERS.items() if tag.startswith(prefix))
    decoded = decoder.decode(EXAMPLES[tag])
    assert type(decoded).__struct_config__.tag == tag
    again = decoder.decode(messages.encoder.encode(decoded))
    assert again == decoded


def test_every_message_type_has_an_example() -> None:
    structs = [messages.SendSms, messages.SendEmail, messages.SendWhatsApp, messages.StatusEvent,
               messages.InboundEvent, messages.StatusChanged]
    assert {s.__struct_config__.tag for s in structs} == set(EXAMPLES)


def test_unknown_fields_are_ignored_so_producers_can_add_fields_first() -> None:
    payload = EXAMPLES["send.sms.v1"].replace(b'"attempt":0', b'"attempt":0,"future_field":1')
    assert messages.send_decoder.decode(payload).attempt == 0


def test_a_wrong_type_is_rejected_with_the_field_named() -> None:
    bad = EXAMPLES["send.sms.v1"].replace(b'"live":false', b'"live":"nope"')
    with pytest.raises(msgspec.ValidationError, match="live"):
        messages.send_decoder.decode(bad)


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        (Status.QUEUED, Status.PROCESSING, Status.PROCESSING),
        (Status.PROCESSING, Status.SENT, Status.SENT),
        (Status.SENT, Status.DELIVERED, Status.DELIVERED),
        (Status.DELIVERED, Status.READ, Status.READ),
        (Status.QUEUED, Status.DELIVERED, Status.DELIVERED),  # a receipt that overtook SENT
        (Status.DELIVERED, Status.SENT, Status.DELIVERED),  # late SENT never moves it back
        (Status.READ, Status.DELIVERED, Status.READ),
        (Status.SENT, Status.FAILED, Status.FAILED),
        (Status.DELIVERED, Status.FAILED, Status.DELIVERED),
        (Status.FAILED, Status.DELIVERED, Status.FAILED),
        (Status.FAILED, Status.SENT, Status.FAILED),
        (Status.SENT, Status.PROCESSING, Status.SENT),
    ],
)
def test_status_never_moves_backwards(current: Status, new: Status, expected: Status) -> None:
    assert resolve(current, new) is expected
    assert can_transition(current, new) is (expected is new and current is not new)


def test_webhook_event_types() -> None:
    assert webhook_event_type(Channel.SMS, Status.DELIVERED) == "sms_delivered"
    assert webhook_event_type(Channel.WHATSAPP, Status.READ) == "whatsapp_read"
    assert webhook_event_type(Channel.SMS, Status.PROCESSING) is None


def test_topology_names_are_distinct() -> None:
    queues = [topology.EMAIL_SEND_QUEUE, topology.SMS_SEND_QUEUE, topology.WHATSAPP_SEND_QUEUE,
              topology.REPORTING_QUEUE, topology.FANOUT_QUEUE, topology.FANOUT_DELIVERY_QUEUE]
    assert len(set(queues)) == len(queues)
    assert topology.status_key(Channel.SMS) == "event.status.sms"
    assert topology.delay_queue(topology.SMS_SEND_QUEUE, 5) == "sms-dispatcher.send.delay.5000ms"
