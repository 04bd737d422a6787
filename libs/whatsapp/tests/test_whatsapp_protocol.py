"""The Cloud API rules against the examples of protocols.md: signatures, envelopes, bodies, codes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from postwire_whatsapp import cloud_api, keywords, numbers, webhooks

INBOUND = b"""{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":
"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",
"phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
"timestamp":"1749416383","type":"text","text":{"body":"STOP"}}]}}]}]}"""

FAILED = b"""{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",
"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",
"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.xyz","status":"failed",
"timestamp":"1689380458","recipient_id":"972987654321","new_field":{"x":1},
"errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message",
"error_data":{"details":"More than 24 hours have passed since the recipient last replied"}}]}]}}]}]}"""


def test_signature_is_hmac_sha256_of_the_raw_bytes_compared_in_constant_time() -> None:
    expected = "sha256=" + hmac.new(b"app-secret", INBOUND, hashlib.sha256).hexdigest()
    assert webhooks.sign("app-secret", INBOUND) == expected
    assert webhooks.signature_ok("app-secret", INBOUND, expected)
    assert webhooks.signature_ok("app-secret", INBOUND, expected.upper().replace("SHA256", "sha256"))
    assert not webhooks.signature_ok("app-secret", INBOUND + b" ", expected)
    assert not webhooks.signature_ok("other", INBOUND, expected)
    assert not webhooks.signature_ok("app-secret", INBOUND, None)
    assert not webhooks.signature_ok("app-secret", INBOUND, "")
    assert not webhooks.signature_ok("", INBOUND, webhooks.sign("", INBOUND))


def test_inbound_example_decodes() -> None:
    env = webhooks.envelope_decoder.decode(INBOUND)
    value = env.entry[0].changes[0].value
    assert env.object == "whatsapp_business_account"
    assert value.metadata.phone_number_id == "106540352242922"
    assert value.contacts[0].wa_id == "16505551234" and value.contacts[0].profile is not None
    assert value.contacts[0].profile.name == "Sheena Nelson"
    [message] = value.messages
    assert (message.sender, message.type, message.body, message.timestamp) == (
        "16505551234", "text", "STOP", "1749416383")


def test_failed_status_example_decodes_with_unknown_fields_ignored() -> None:
    [status] = webhooks.envelope_decoder.decode(FAILED).entry[0].changes[0].value.statuses
    assert (status.id, status.status, status.recipient_id) == ("wamid.xyz", "failed", "972987654321")
    [error] = status.errors
    assert error.code == 131047
    assert error.reason == ("Re-engagement message: More than 24 hours have passed since the "
                            "recipient last replied")


def test_button_and_interactive_replies_have_a_body() -> None:
    button = webhooks.InboundMessage(id="w1", type="button",
                                     button=webhooks.Button(text="Stop", payload="STOP_PROMO"))
    reply = webhooks.InboundMessage(id="w2", type="interactive", interactive=webhooks.Interactive(
        type="button_reply", button_reply=webhooks.Reply(id="b1", title="Yes")))
    image = webhooks.InboundMessage(id="w3", type="image", image=webhooks.Media(caption="look"))
    assert (button.body, reply.body, image.body) == ("Stop", "Yes", "look")
    assert webhooks.InboundMessage(id="w4", type="sticker").body == ""


def test_built_notifications_decode_as_meta_sends_them() -> None:
    raw = webhooks.encode(webhooks.envelope("106540352242922", "15550783881", statuses=[
        webhooks.status_item("wamid.a", "sent", 1749416383, "15551234567", callback_data="01JD"),
        webhooks.status_item("wamid.a", "failed", 1749416384, "15551234567", errors=[
            {"code": 131026, "title": "Message undeliverable"}]),
    ]))
    value = webhooks.envelope_decoder.decode(raw).entry[0].changes[0].value
    sent, failed = value.statuses
    assert (sent.biz_opaque_callback_data, sent.timestamp, sent.pricing is not None) == (
        "01JD", "1749416383", True)
    assert failed.errors[0].code == 131026 and failed.errors[0].reason == "Message undeliverable"


def test_send_bodies_match_the_reference() -> None:
    assert cloud_api.text_body("15551234567", "Hi") == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "15551234567",
        "type": "text", "text": {"preview_url": False, "body": "Hi"}}
    body = cloud_api.template_body("15551234567", "order_update", "en_US", ["#12345"],
                                   callback_data="01JD0000000000000000000002")
    assert body["template"] == {"name": "order_update", "language": {"code": "en_US"},
                                "components": [{"type": "body", "parameters": [
                                    {"type": "text", "text": "#12345"}]}]}
    assert body["biz_opaque_callback_data"] == "01JD0000000000000000000002"
    assert "components" not in cloud_api.template_body("1555", "hello_world", "en_US", [])["template"]
    assert cloud_api.messages_path("v23.0", "106540352242922") == "/v23.0/106540352242922/messages"
    with pytest.raises(ValueError, match="512"):
        cloud_api.text_body("1", "x", callback_data="x" * 513)


def test_answers_decode() -> None:
    ok = cloud_api.accepted_decoder.decode(
        b'{"messaging_product":"whatsapp","contacts":[{"input":"15551234567","wa_id":"15551234567"}],'
        b'"messages":[{"id":"wamid.HBgN"}]}')
    assert ok.messages[0].id == "wamid.HBgN" and ok.contacts[0].wa_id == "15551234567"
    err = cloud_api.error_decoder.decode(
        b'{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException",'
        b'"code":131047,"error_data":{"details":"24 hours"},"fbtrace_id":"Az"}}').error
    assert (err.code, err.reason, err.fbtrace_id) == (131047, "(#131047) Re-engagement message: 24 hours",
                                                       "Az")


@pytest.mark.parametrize(("code", "expected"), [
    (131047, cloud_api.Handling.PERMANENT), (131026, cloud_api.Handling.PERMANENT),
    (132001, cloud_api.Handling.PERMANENT), (190, cloud_api.Handling.PERMANENT),
    (131048, cloud_api.Handling.PERMANENT), (131049, cloud_api.Handling.PERMANENT),
    (130429, cloud_api.Handling.THROTTLE_NUMBER), (131056, cloud_api.Handling.THROTTLE_RECIPIENT),
    (131000, cloud_api.Handling.RETRY), (999999, cloud_api.Handling.PERMANENT),
])
def test_error_codes_map_as_the_reference_says(code: int, expected: cloud_api.Handling) -> None:
    assert cloud_api.handling(code) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("STOP", ("opt_out", "STOP")), (" stop. ", ("opt_out", "STOP")), ("Stop!", ("opt_out", "STOP")),
    ("unsubscribe", ("opt_out", "UNSUBSCRIBE")), ("START", ("opt_in", "START")),
    ("yes 👍", ("opt_in", "YES")), ("STOP PLEASE", None), ("stopp", None), ("", None), (None, None),
])
def test_only_a_single_keyword_counts(text: str | None, expected: object) -> None:
    assert keywords.classify(text) == expected


def test_keyword_lists_are_configurable() -> None:
    assert keywords.classify("basta", opt_out=["BASTA"], opt_in=["VOLVER"]) == ("opt_out", "BASTA")
    assert keywords.classify("stop", opt_out=["BASTA"], opt_in=["VOLVER"]) is None


def test_wa_ids_are_e164_digits() -> None:
    assert numbers.wa_id("+1 (555) 123-4567") == "15551234567"
    assert numbers.wa_id("15551234567") == "15551234567"
    assert numbers.e164("15551234567") == "+15551234567"
    assert numbers.is_wa_id("15551234567") and not numbers.is_wa_id("+15551234567")
    assert not numbers.is_wa_id("0123456789") and not numbers.is_wa_id("12345")
