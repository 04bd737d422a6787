"""The email dispatcher: consumes `send.email` commands."""
