import json

import pytest

from app import contract
from app.contract import ContractError, MessageType

LIMIT = 1000


def chunk_headers(**overrides: str | None) -> list[tuple[str, bytes]]:
    headers = dict(
        contract.headers_for(
            MessageType.CHUNK, seq=3, camera="cam-1", t0=12.5, content_type="video/mp2t"
        )
    )
    for name, value in overrides.items():
        name = name.replace("_", "-") if name == "content_type" else name
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value.encode()
    return list(headers.items())


def test_chunk_round_trip() -> None:
    env = contract.parse(b"s-1", chunk_headers(), b"\x47video", max_value_bytes=LIMIT)
    assert (env.session_id, env.type, env.seq, env.camera) == ("s-1", MessageType.CHUNK, 3, "cam-1")
    assert (env.t0, env.content_type, env.value) == (12.5, "video/mp2t", b"\x47video")


def test_control_payload_is_parsed() -> None:
    payload = {"store_id": "store-9", "candidate_skus": ["A1", "B2"]}
    headers = contract.headers_for(MessageType.SESSION_START, seq=0, camera="cam-1")
    env = contract.parse(b"s-1", headers, contract.control_value(payload), max_value_bytes=LIMIT)
    assert env.type is MessageType.SESSION_START and env.control == payload
    assert env.t0 is None


@pytest.mark.parametrize(
    ("key", "headers", "value", "reason"),
    [
        (None, chunk_headers(), b"v", "no key"),
        (b"bad key!", chunk_headers(), b"v", "session id"),
        (
            b"s",
            chunk_headers(**{"cartmem-schema": None}),
            b"v",
            "'cartmem-schema' header is missing",
        ),
        (b"s", chunk_headers(**{"cartmem-schema": "2"}), b"v", "not supported"),
        (b"s", chunk_headers(type="shelf_scan"), b"v", "unknown"),
        (b"s", chunk_headers(type=None), b"v", "'type' header is missing"),
        (b"s", chunk_headers(seq="-1"), b"v", "not a non-negative integer"),
        (b"s", chunk_headers(seq=None), b"v", "'seq' header is missing"),
        (b"s", chunk_headers(camera=""), b"v", "camera"),
        (b"s", chunk_headers(t0="soon"), b"v", "not a number"),
        (b"s", chunk_headers(t0="nan"), b"v", "finite"),
        (b"s", chunk_headers(t0=None), b"v", "t0"),
        (b"s", chunk_headers(content_type="video/avi"), b"v", "not supported"),
        (b"s", chunk_headers(), b"", "no video bytes"),
        (b"s", chunk_headers(), b"x" * (LIMIT + 1), "over the 1000-byte limit"),
        (b"s", [*chunk_headers(), ("seq", b"4")], b"v", "more than once"),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_END, seq=1, camera="c"),
            b"{oops",
            "not JSON",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_END, seq=1, camera="c"),
            b"[1]",
            "JSON object",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_START, seq=0, camera="c"),
            json.dumps({"candidate_skus": "A1"}).encode(),
            "candidate_skus",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_START, seq=0, camera="c"),
            json.dumps({"cameras": "front"}).encode(),
            "cameras must be a list",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_START, seq=0, camera="c"),
            json.dumps({"cameras": []}).encode(),
            "cameras must be a list",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_START, seq=0, camera="c"),
            json.dumps({"cameras": ["a", "b", "c", "d", "e"]}).encode(),
            "cameras must be a list",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_START, seq=0, camera="c"),
            json.dumps({"cameras": ["a", "a"]}).encode(),
            "cameras must be a list",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_START, seq=0, camera="c"),
            json.dumps({"cameras": ["with space"]}).encode(),
            "cameras must be a list",
        ),
        (
            b"s",
            contract.headers_for(MessageType.SESSION_START, seq=0, camera="c"),
            json.dumps({"cameras": [7]}).encode(),
            "cameras must be a list",
        ),
    ],
)
def test_each_contract_break_has_a_readable_reason(key, headers, value, reason) -> None:
    with pytest.raises(ContractError) as info:
        contract.parse(key, headers, value, max_value_bytes=LIMIT)
    assert reason in str(info.value)
    assert str(info.value).endswith(".")
