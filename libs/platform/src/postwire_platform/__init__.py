"""Postwire's shared runtime: settings, broker and Mongo factories, HTTP health, logging, telemetry."""
