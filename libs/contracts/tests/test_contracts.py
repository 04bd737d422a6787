from __future__ import annotations

import msgspec
import pytest

from postwire_contracts import messages, topology, webhooks
from postwire_contracts.examples import EXAMPLES
from postwire_contracts.status import Channel, Status, can_transition, resolve, webhook_event_type

DECODERS = {
    "send.": messages.send_decoder,
    "event.": messages.event_message_decoder,
    "notify.": messages.any_notification_decoder,
    "webhook.": webhooks.command_decoder,
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
               messages.StatusEvents, messages.InboundEvent, messages.StatusChanged,
               messages.StatusChanges, messages.InboundReceived, messages.OptOutChanged,
               webhooks.ReplayDelivery, webhooks.ReplayFailed, webhooks.SendTestEvent]
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
              topology.REPORTING_QUEUE, topology.FANOUT_QUEUE, topology.FANOUT_DELIVERY_QUEUE,
              topology.WHATSAPP_INBOUND_QUEUE, topology.FANOUT_COMMAND_QUEUE]
    assert len(set(queues)) == len(queues)
    assert topology.status_key(Channel.SMS) == "event.status.sms"
    assert topology.delay_queue(topology.SMS_SEND_QUEUE, 5) == "sms-dispatcher.send.delay.5000ms"


def test_the_webhook_id_is_stable_per_event_and_endpoint() -> None:
    one = webhooks.webhook_id("evt_1", "we_a")
    assert one == webhooks.webhook_id("evt_1", "we_a") and one.startswith("msg_")
    assert one != webhooks.webhook_id("evt_1", "we_b") and one != webhooks.webhook_id("evt_2", "we_a")


def test_every_status_event_type_is_a_customer_event_type() -> None:
    for channel in Channel:
        for status in Status:
            event_type = webhook_event_type(channel, status)
            assert event_type is None or event_type in webhooks.EVENT_TYPES


def test_inbound_notifications_travel_on_their_own_key() -> None:
    assert topology.notify_inbound_key(Channel.WHATSAPP) == "notify.inbound.whatsapp"
    note = messages.any_notification_decoder.decode(EXAMPLES["notify.inbound.v1"])
    assert isinstance(note, messages.InboundReceived) and note.event_type == "whatsapp_inbound"
    old = EXAMPLES["event.inbound.v1"].split(b',\n"detail"')[0] + b"}"
    assert messages.event_decoder.decode(old).detail == {}


def test_an_email_command_from_before_issue_4_still_decodes_with_defaults() -> None:
    old = (b'{"kind":"send.email.v1","message_id":"m1","tenant_id":"t","live":true,'
           b'"from_address":"a@shop.example","to":["b@example.com"],"subject":"Hi",'
           b'"text":"Hi","accepted_at":"2026-11-21T12:00:00Z"}')
    command = messages.send_decoder.decode(old)
    assert isinstance(command, messages.SendEmail)
    assert (command.display_to, command.cc, command.template_id, command.track_opens,
            command.track_clicks) == ([], [], None, False, False)
    event = messages.event_decoder.decode(
        b'{"kind":"event.status.v1","event_id":"e","channel":"email","status":"SENT",'
        b'"occurred_at":"2026-11-21T12:00:00Z","source":"x"}')
    assert isinstance(event, messages.StatusEvent) and event.event_type is None


def test_otp_lane_and_opt_out_keys() -> None:
    assert topology.sms_send_key("OTP") == "send.sms.otp"
    assert topology.sms_send_key("STANDARD") == topology.SEND_SMS == "send.sms"
    assert topology.optout_key(Channel.SMS) == "notify.optout.sms"
    assert messages.notification_decoder.decode(EXAMPLES["notify.status.v1"]).event_type


def test_a_status_key_carries_one_change_or_a_batch_of_them() -> None:
    single = messages.status_notification_decoder.decode(EXAMPLES["notify.status.v1"])
    assert isinstance(single, messages.StatusChanged)
    batch = messages.status_notification_decoder.decode(EXAMPLES["notify.status.batch.v1"])
    assert isinstance(batch, messages.StatusChanges)
    assert [(c.event_id, c.status) for c in batch.changes] == [("evt_2", Status.SENT),
                                                              ("evt_3", Status.DELIVERED)]
    assert set(batch.traceparents) == {"evt_3"}
    with pytest.raises(msgspec.ValidationError, match="changes"):
        messages.status_notification_decoder.decode(
            b'{"kind":"notify.status.batch.v1","changes":[{"kind":"notify.status.v1"}]}')


def test_status_events_published_together_keep_their_order() -> None:
    message = messages.event_message_decoder.decode(EXAMPLES["event.status.batch.v1"])
    assert isinstance(message, messages.StatusEvents)
    assert [e.status for e in message.events] == [Status.PROCESSING, Status.SENT]
    assert isinstance(messages.event_message_decoder.decode(EXAMPLES["event.status.v1"]),
                      messages.StatusEvent)
