"""AsyncAPI 3.0 for the socket protocol, generated from the frame types in ``protocol/``.

The document cannot drift from the code: every message is the JSON schema msgspec derives
from a frame Struct, and the operations list every frame type.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from protocol.errors import CloseCode, ErrorCode
from protocol.frames import CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES, Frame

_REF = "#/components/schemas/{name}"


def _tag(frame: type[Frame]) -> str:
    return str(frame.__struct_config__.tag)


def _messages(frames: tuple[type[Frame], ...], refs: dict[type[Frame], Any]) -> dict[str, Any]:
    return {
        _tag(frame): {
            "name": _tag(frame),
            "title": frame.__name__,
            "summary": (frame.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": refs[frame],
        }
        for frame in frames
    }


def build_asyncapi(version: str) -> dict[str, Any]:
    """Return the AsyncAPI document of ``/api/v1/ws``."""
    types: list[type[Frame]] = [*CLIENT_FRAME_TYPES, *SERVER_FRAME_TYPES]
    schema_refs, schemas = msgspec.json.schema_components(types, ref_template=_REF)
    refs = dict(zip(types, schema_refs, strict=True))
    client = _messages(CLIENT_FRAME_TYPES, refs)
    server = _messages(SERVER_FRAME_TYPES, refs)
    messages = {
        **{f"client.{k}": v for k, v in client.items()},
        **{f"server.{k}": v for k, v in server.items()},
    }
    channel_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "StudyBuddy socket protocol",
            "version": version,
            "description": (
                "Flat frames: `type` plus fields; an optional `ref` on a client frame comes "
                "back on its reply or error. The first frame must be `auth` within 5 s. "
                "Subprotocols: "
                f"`{JSON_SUBPROTOCOL}` (text frames, the default) and `{MSGPACK_SUBPROTOCOL}` "
                "(binary frames, same fields). Close codes: "
                + ", ".join(f"{int(code)} {code.name}" for code in CloseCode)
                + ". Error codes: "
                + ", ".join(code.value for code in ErrorCode)
                + ". See docs/protocol.md."
            ),
        },
        "servers": {
            "node": {
                "host": "localhost:8000",
                "protocol": "ws",
                "pathname": "/api/v1/ws",
                "description": "Any node.",
            }
        },
        "channels": {
            "socket": {
                "address": "/api/v1/ws",
                "messages": channel_messages,
                "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
            }
        },
        "operations": {
            "clientSends": {
                "action": "receive",
                "channel": {"$ref": "#/channels/socket"},
                "summary": "Frames a client sends.",
                "messages": [
                    {"$ref": f"#/channels/socket/messages/client.{name}"} for name in client
                ],
            },
            "serverSends": {
                "action": "send",
                "channel": {"$ref": "#/channels/socket"},
                "summary": "Frames the server sends.",
                "messages": [
                    {"$ref": f"#/channels/socket/messages/server.{name}"} for name in server
                ],
            },
        },
        "components": {"schemas": schemas, "messages": messages},
    }
