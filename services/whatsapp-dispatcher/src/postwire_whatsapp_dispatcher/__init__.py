"""The whatsapp dispatcher: consumes `send.whatsapp` commands."""
