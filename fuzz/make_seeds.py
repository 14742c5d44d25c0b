#!/usr/bin/env python3
"""Writes the protobuf seeds of the fuzz corpus (pure Python, no protobuf library):
an OTLP ExportLogsServiceRequest and a snappy-framed Loki PushRequest."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def string(number, text):
    return field(number, 2, text.encode())


def any_string(text):
    return string(1, text)


def key_value(key, value):
    return string(1, key) + field(2, 2, any_string(value))


def otlp():
    resource = field(1, 2, key_value("service.name", "checkout")) + field(1, 2, key_value("host.name", "h1"))
    record = (
        field(1, 1, (1796000000000000000).to_bytes(8, "little"))
        + field(2, 0, varint(17))
        + string(3, "ERROR")
        + field(5, 2, any_string("payment failed"))
        + field(6, 2, key_value("order", "42"))
        + field(9, 2, bytes(range(16)))
        + field(10, 2, bytes(range(8)))
    )
    scope = field(1, 2, string(1, "app") + string(2, "1.0")) + field(2, 2, record)
    resource_logs = field(1, 2, resource) + field(2, 2, scope)
    return field(1, 2, resource_logs)


def snappy_literal(data):
    """A valid snappy block made only of literals (uncompressed, but well formed)."""
    out = bytearray(varint(len(data)))
    for start in range(0, len(data), 60):
        chunk = data[start:start + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def loki():
    timestamp = field(1, 0, varint(1796000000)) + field(2, 0, varint(5))
    entry = field(1, 2, timestamp) + string(2, "level=error msg=\"disk full\"") + field(3, 2, string(1, "trace_id") + string(2, "abc"))
    stream = string(1, '{service="checkout", env="prod"}') + field(2, 2, entry)
    return snappy_literal(field(1, 2, stream))


for target, name, body in [("otlp_protobuf", "request.pb", otlp()), ("loki_protobuf", "push.pb.snappy", loki())]:
    os.makedirs(os.path.join(HERE, "seeds", target), exist_ok=True)
    with open(os.path.join(HERE, "seeds", target, name), "wb") as f:
        f.write(body)
