"""The OTLP/protobuf decoder's fast paths read exactly what the field-by-field walk reads."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from railtracks.view import _protobuf as pb


def _walk(data: bytes) -> list[tuple[int, int, int, int]] | str:
    try:
        return list(pb._fields(data, 0, len(data)))
    except pb.BadPayload:
        return "bad"


def _listed(data: bytes) -> list[tuple[int, int, int, int]] | str:
    try:
        return pb._field_list(data, 0, len(data))
    except pb.BadPayload:
        return "bad"


def test_field_list_matches_the_walk_on_hostile_bytes() -> None:
    rng = random.Random(7)
    kv = KeyValue(key="railtracks.node.input")
    kv.value.string_value = '{"x":' + "1" * 300 + "}"
    seeds = [kv.SerializeToString(), b"\x08\x96\x01\x12\x03abc\x19" + bytes(8), b"\x0d\x01\x02"]
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(0, 3)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data) + 1)]
        assert _listed(bytes(data)) == _walk(bytes(data))


@pytest.mark.parametrize(
    ("key", "value"),
    [("a", "b"), ("railtracks.node.name", "fetch"), ("k", "é" * 40), ("k", "x" * 200),
     ("k", ""), ("", "v"), ("k", 5), ("k", True), ("k", None)],
)  # fmt: skip
def test_a_key_value_reads_the_same_whatever_its_shape(key: str, value: object) -> None:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, str):
        kv.value.string_value = value
    data = kv.SerializeToString()
    assert pb._kv(data, 0, len(data)) == (key, value)
    # a KeyValue cut short is refused, never read past its end
    for cut in range(len(data)):
        try:
            pb._kv(data[:cut] + b"\x0a", 0, cut)
        except pb.BadPayload:
            continue
