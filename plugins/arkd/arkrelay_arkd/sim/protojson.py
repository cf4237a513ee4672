"""Protobuf <-> JSON as arkd's REST gateway does it.

arkd v0.9.15 fronts its gRPC services with meshapi/grpc-api-gateway v0.1.0, whose default
marshaler is Go's protojson with ``EmitUnpopulated`` (protomarshal/registry.go): lowerCamel
JSON names, 64-bit integers as strings, enums by name, bytes as base64, every field printed
even at its zero value, and an unset singular message field as ``null``. Request bodies
are read with ``DiscardUnknown`` (either JSON or proto field names). Query parameters and
path segments are bound field by field (protopath/protopath.go): a field is named by
its proto or JSON name, dotted paths reach nested messages, a repeated field takes the
parameter once per value, a repeated path segment is split at commas, and a parameter
naming no field is ignored.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["BindError", "bind_path", "bind_query", "message_from_json", "message_to_json"]

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_INTS = {
    FieldDescriptor.TYPE_INT32: 32,
    FieldDescriptor.TYPE_SINT32: 32,
    FieldDescriptor.TYPE_SFIXED32: 32,
    FieldDescriptor.TYPE_INT64: 64,
    FieldDescriptor.TYPE_SINT64: 64,
    FieldDescriptor.TYPE_SFIXED64: 64,
}
_UINTS = {
    FieldDescriptor.TYPE_UINT32: 32,
    FieldDescriptor.TYPE_FIXED32: 32,
    FieldDescriptor.TYPE_UINT64: 64,
    FieldDescriptor.TYPE_FIXED64: 64,
}


class BindError(ValueError):
    """A request that cannot be turned into its message (the gateway's InvalidArgument)."""


# ---------------------------------------------------------------------------- out


def message_to_json(message: Message) -> dict[str, Any]:
    out = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    _null_unset_messages(message, out)
    return out


def _null_unset_messages(message: Message, out: dict[str, Any]) -> None:
    if message.DESCRIPTOR.full_name.startswith("google.protobuf."):
        return  # well-known types have their own JSON forms
    for field in message.DESCRIPTOR.fields:
        if field.message_type is None:
            continue
        value = getattr(message, field.name)
        if _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                for key, item in value.items():
                    _null_unset_messages(item, out[field.json_name][str(key)])
        elif field.is_repeated:
            for item, item_out in zip(value, out[field.json_name], strict=True):
                _null_unset_messages(item, item_out)
        elif message.HasField(field.name):
            _null_unset_messages(value, out[field.json_name])
        elif field.containing_oneof is None:
            out[field.json_name] = None


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


# ---------------------------------------------------------------------------- in


def message_from_json(body: bytes, message: Message) -> None:
    """Merge a JSON body into ``message``; an empty body is an empty message."""
    if not body.strip():
        return
    try:
        json_format.Parse(body, message, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise BindError(str(exc)) from exc


def bind_path(message: Message, params: Mapping[str, str]) -> None:
    for path, raw in params.items():
        field, owner = _resolve(message, path)
        if field is None:
            continue
        values = raw.split(",") if field.is_repeated else [raw]
        _assign(owner, field, values)


def bind_query(message: Message, pairs: Iterable[tuple[str, str]], skip: Iterable[str]) -> None:
    """Bind query parameters; ``skip`` holds field paths already bound from the path."""
    skipped = set(skip)
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        map_key = None
        if key.endswith("]") and "[" in key and not key.startswith("["):
            key, _, map_key = key[:-1].partition("[")
        values = grouped.setdefault(key, [])
        if map_key is not None:
            values.extend((map_key, value))
        else:
            values.append(value)
    for key, values in grouped.items():
        if key in skipped:
            continue
        field, owner = _resolve(message, key)
        if field is not None:
            _assign(owner, field, values)


def _resolve(message: Message, path: str) -> tuple[FieldDescriptor | None, Message]:
    owner = message
    segments = path.split(".")
    for i, name in enumerate(segments):
        field = _field(owner.DESCRIPTOR, name)
        if field is None:
            return None, owner
        if i == len(segments) - 1:
            return field, owner
        if field.message_type is None or field.is_repeated:
            raise BindError(f"invalid path: {name!r} is not a message")
        owner = getattr(owner, field.name)
    raise BindError("no field path")


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    found = descriptor.fields_by_name.get(name)
    if found is not None:
        return found
    return next((f for f in descriptor.fields if f.json_name == name), None)


def _assign(owner: Message, field: FieldDescriptor, values: list[str]) -> None:
    oneof = field.containing_oneof
    if oneof is not None and owner.WhichOneof(oneof.name) is not None:
        raise BindError(f"field already set for oneof {oneof.name!r}")
    if _is_map(field):
        if len(values) != 2:
            raise BindError(f"one value per key expected in map {field.name!r}")
        entry = field.message_type
        key = _scalar(entry.fields_by_name["key"], values[0])
        value_field = entry.fields_by_name["value"]
        getattr(owner, field.name)[key] = _scalar(value_field, values[1])
        return
    if field.is_repeated:
        getattr(owner, field.name).extend(_scalar(field, v) for v in values)
        return
    if len(values) > 1:
        raise BindError(f"too many values for field {field.name!r}: {', '.join(values)}")
    setattr(owner, field.name, _scalar(field, values[0]))


def _scalar(field: FieldDescriptor, raw: str) -> Any:
    kind = field.type
    try:
        if kind == FieldDescriptor.TYPE_STRING:
            return raw
        if kind == FieldDescriptor.TYPE_BOOL:
            if raw in _TRUE:
                return True
            if raw in _FALSE:
                return False
            raise ValueError(f"invalid syntax: {raw!r}")
        if kind in _INTS:
            value = int(raw, 10)
            bits = _INTS[kind]
            if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                raise ValueError("value out of range")
            return value
        if kind in _UINTS:
            value = int(raw, 10)
            if not 0 <= value < 1 << _UINTS[kind]:
                raise ValueError("value out of range")
            return value
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return float(raw)
        if kind == FieldDescriptor.TYPE_BYTES:
            padded = raw + "=" * (-len(raw) % 4)
            try:
                return base64.b64decode(padded, validate=True)
            except ValueError:
                return base64.urlsafe_b64decode(padded)
        if kind == FieldDescriptor.TYPE_ENUM:
            by_name = field.enum_type.values_by_name.get(raw)
            if by_name is not None:
                return by_name.number
            number = int(raw, 10)
            if number not in field.enum_type.values_by_number:
                raise ValueError(f"{raw!r} is not a value of {field.enum_type.full_name}")
            return number
    except ValueError as exc:
        raise BindError(f"parsing field {field.name!r}: {exc}") from exc
    raise BindError(f"field {field.name!r} cannot be set from a parameter")
