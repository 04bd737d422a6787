"""Reporting: the single writer of message status transitions and timelines after acceptance."""
