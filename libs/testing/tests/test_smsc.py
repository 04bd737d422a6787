"""The SMSC simulator checked with hand-built PDUs (SMPP 3.4 section 4), independently of any SMPP
library: bind, submit_sm with a concatenation UDH, the receipt as deliver_sm, enquire_link, unbind."""

from __future__ import annotations

import asyncio
import struct

from postwire_testing.smsc import SmscSimulator

HEADER = struct.Struct(">IIII")


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def bind_body(system_id: str, password: str) -> bytes:
    return (system_id.encode() + b"\0" + password.encode() + b"\0" + b"\0" + bytes([0x34, 1, 1])
            + b"\0")


def submit_body(dest: str, short_message: bytes, *, esm_class: int = 0,
                reference: str | None = None) -> bytes:
    body = (b"\0" + bytes([5, 0]) + b"Postwire\0" + bytes([1, 1]) + dest.encode() + b"\0"
            + bytes([esm_class, 0, 0]) + b"\0" + b"\0" + bytes([1, 0, 0, 0, len(short_message)])
            + short_message)
    if reference is not None:
        value = reference.encode() + b"\0"
        body += struct.pack(">HH", 0x1400, len(value)) + value
    return body


async def read_pdu(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    length, command_id, status, sequence = HEADER.unpack(await reader.readexactly(16))
    return command_id, status, sequence, await reader.readexactly(length - 16)


def tlvs(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while len(data) >= 4:
        tag, length = struct.unpack(">HH", data[:4])
        found[tag] = data[4:4 + length]
        data = data[4 + length:]
    return found


def deliver_fields(body: bytes) -> tuple[int, bytes, dict[int, bytes]]:
    """esm_class, short_message and TLVs of a deliver_sm body."""
    i = body.index(b"\0") + 1 + 2          # service_type, source ton/npi
    i = body.index(b"\0", i) + 1 + 2       # source_addr, dest ton/npi
    i = body.index(b"\0", i) + 1           # destination_addr
    esm_class = body[i]
    i += 3                                  # esm_class, protocol_id, priority_flag
    i = body.index(b"\0", i) + 1           # schedule_delivery_time
    i = body.index(b"\0", i) + 1           # validity_period
    i += 4                                  # registered_delivery .. sm_default_msg_id
    length = body[i]
    short = body[i + 1:i + 1 + length]
    return esm_class, short, tlvs(body[i + 1 + length:])


async def test_bind_submit_receipt_enquire_unbind() -> None:
    async with SmscSimulator(receipt_delay=0.01) as smsc:
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        writer.write(pdu(0x09, 1, bind_body("postwire", "wrong")))
        assert (await read_pdu(reader))[:3] == (0x80000009, 0x0E, 1)
        writer.write(pdu(0x09, 2, bind_body("postwire", "secret")))
        command_id, status, _, body = await read_pdu(reader)
        assert (command_id, status, body) == (0x80000009, 0, b"SMSCSIM\0")

        udh = bytes([5, 0, 3, 0x2A, 2, 1])
        writer.write(pdu(0x04, 3, submit_body("447700900123", udh + b"part one", esm_class=0x40,
                                              reference="m-1")))
        command_id, status, sequence, body = await read_pdu(reader)
        assert (command_id, status, sequence) == (0x80000004, 0, 3)
        message_id = body.rstrip(b"\0").decode()
        [submit] = smsc.submits
        assert (submit.message_id, submit.reference, submit.udh) == (message_id, "m-1", (0x2A, 2, 1))
        assert (submit.destination, submit.text, submit.registered_delivery) == (
            "447700900123", "part one", 1)

        command_id, status, sequence, body = await read_pdu(reader)
        assert command_id == 0x00000005
        esm_class, text, params = deliver_fields(body)
        assert esm_class == 0x04 and f"id:{message_id} ".encode() in text and b"stat:DELIVRD" in text
        assert params[0x001E] == message_id.encode() + b"\0" and params[0x0427] == b"\x02"
        assert smsc.acked_receipts == []
        writer.write(pdu(0x80000005, sequence, b"\0"))
        await smsc.wait_for(lambda s: s.acked_receipts == [message_id])

        writer.write(pdu(0x15, 4))
        assert (await read_pdu(reader))[:3] == (0x80000015, 0, 4)
        assert smsc.enquire_links == 1
        writer.write(pdu(0x06, 5))
        assert (await read_pdu(reader))[:3] == (0x80000006, 0, 5)
        writer.close()


async def test_rejections_throttling_and_a_dropped_bind() -> None:
    async with SmscSimulator(receipt_delay=5, reject_numbers={"15005550001"}) as smsc:
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        writer.write(pdu(0x09, 1, bind_body("postwire", "secret")))
        await read_pdu(reader)
        writer.write(pdu(0x04, 2, submit_body("15005550001", b"x")))
        assert (await read_pdu(reader))[1] == 0x0B
        smsc.throttle_next(1)
        writer.write(pdu(0x04, 3, submit_body("447700900123", b"x")))
        assert (await read_pdu(reader))[1] == 0x58
        smsc.drop_after(1)
        writer.write(pdu(0x04, 4, submit_body("447700900123", b"y")) +
                     pdu(0x04, 5, submit_body("447700900123", b"z")))
        assert (await read_pdu(reader))[1:3] == (0, 4)  # the answer written before the drop arrives
        assert await reader.read() == b""               # then the connection closes
        assert [s.text for s in smsc.submits] == ["y"]
        assert smsc.rejected == [("15005550001", 0x0B), ("447700900123", 0x58)]
        writer.close()


async def test_a_pdu_out_of_step_with_its_length_drops_the_bind() -> None:
    # smpp34 1.5.0 refuses a deliver_sm (its inbound queue full) with a deliver_sm_resp of 17 octets
    # whose command_length says 16; the next PDU's header is then read one octet late
    async with SmscSimulator(receipt_delay=0.0) as smsc:
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        writer.write(pdu(0x09, 1, bind_body("postwire", "secret")))
        await read_pdu(reader)
        writer.write(pdu(0x04, 2, submit_body("447700900123", b"code 1")))
        assert (await read_pdu(reader))[:3] == (0x80000004, 0, 2)
        command_id, _, sequence, _ = await read_pdu(reader)
        assert command_id == 0x00000005
        writer.write(pdu(0x80000005, sequence, status=0x14) + b"\0")  # refused, one octet too long
        writer.write(pdu(0x04, 3, submit_body("447700900123", b"code 2")))
        command_id, status, _, _ = await read_pdu(reader)
        assert (command_id, status) == (0x80000000, 0x02)  # generic_nack ESME_RINVCMDLEN
        assert await reader.read() == b""  # and the bind is closed
        assert smsc.framing_errors == 1
        assert smsc.submit_count == 1
        writer.close()
