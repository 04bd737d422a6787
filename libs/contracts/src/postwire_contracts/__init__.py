"""Postwire's shared contracts: broker messages, topology and the status machine.

Depends on msgspec only, so every service (and any external consumer) can import it cheaply.
"""
