"""The Meta WhatsApp Cloud API as Postwire speaks it (``/work/shared/reference/protocols.md`` §1).

Shared by whatsapp-dispatcher (send bodies, error handling, the sandbox's webhooks), provider-ingest
(signature check, webhook envelope, keywords), the gateway (wa_id rules) and the fake Graph API of
``postwire_testing``. Depends on msgspec only.
"""
