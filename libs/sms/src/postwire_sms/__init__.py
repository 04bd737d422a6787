"""SMS text rules shared by the gateway, sms-dispatcher and provider-ingest.

``segments`` (encoding, segment count, splitting with UDH), ``keywords`` (STOP/START matching) and
``receipts`` (the SMPP delivery receipt text form and TLVs). Pure functions, no I/O.
"""
