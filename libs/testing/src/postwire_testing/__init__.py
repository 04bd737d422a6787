"""Postwire's pytest plugin: real RabbitMQ and MongoDB-wire fixtures, fake providers, the running system."""
