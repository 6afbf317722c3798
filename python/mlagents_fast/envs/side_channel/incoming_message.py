"""A message read from a side channel (little-endian primitives, see docs/protocol.md section 8)."""

from __future__ import annotations

import struct

from mlagents_fast.envs.exception import UnitySideChannelMessageException

__all__ = ["IncomingMessage"]

_INT32 = struct.Struct("<i")
_FLOAT32 = struct.Struct("<f")


class IncomingMessage:
    """Reads primitives from a side-channel payload, in the order the sender wrote them.

    Reading at the end returns the given default value instead of raising, like ML-Agents.
    A value cut short by the end of the payload, a negative or too large length, or a
    non-ASCII string raises UnitySideChannelMessageException (ML-Agents raises
    ``struct.error``/``UnicodeDecodeError``, or reads garbage past a bad length).
    """

    def __init__(self, buffer: bytes, offset: int = 0):
        self.buffer = buffer
        self.offset = offset

    def read_bool(self, default_value: bool = False) -> bool:
        """Read a 1-byte bool."""
        if self._at_end_of_buffer():
            return default_value
        value = self.buffer[self.offset] != 0
        self.offset += 1
        return value

    def read_int32(self, default_value: int = 0) -> int:
        """Read a little-endian int32."""
        if self._at_end_of_buffer():
            return default_value
        return int(self._unpack(_INT32, "int32"))

    def read_float32(self, default_value: float = 0.0) -> float:
        """Read a little-endian IEEE float32."""
        if self._at_end_of_buffer():
            return default_value
        return self._unpack(_FLOAT32, "float32")

    def read_float32_list(self, default_value: list[float] | None = None) -> list[float]:
        """Read an int32 count followed by that many float32 values."""
        if self._at_end_of_buffer():
            return [] if default_value is None else default_value
        start = self.offset
        list_len = self.read_int32()
        self._check_length(list_len, 4, "float list", start)
        values = list(struct.unpack_from(f"<{list_len}f", self.buffer, self.offset))
        self.offset += 4 * list_len
        return values

    def read_string(self, default_value: str = "") -> str:
        """Read an int32 byte length followed by that many ASCII bytes."""
        if self._at_end_of_buffer():
            return default_value
        start = self.offset
        encoded_len = self.read_int32()
        self._check_length(encoded_len, 1, "string", start)
        raw = bytes(self.buffer[self.offset : self.offset + encoded_len])
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError as err:
            raise UnitySideChannelMessageException(
                f"string at byte {start} is not ASCII (byte {raw[err.start]:#04x} at "
                f"position {err.start})"
            ) from None
        self.offset += encoded_len
        return value

    def get_raw_bytes(self) -> bytes:
        """The whole payload, whatever has been read already."""
        return bytes(self.buffer)

    def _at_end_of_buffer(self) -> bool:
        return self.offset >= len(self.buffer)

    def _unpack(self, layout: struct.Struct, kind: str) -> float:
        left = len(self.buffer) - self.offset
        if left < layout.size:
            raise UnitySideChannelMessageException(
                f"{kind} at byte {self.offset} is cut short: {left} of its {layout.size} bytes "
                "are in the message"
            )
        (value,) = layout.unpack_from(self.buffer, self.offset)
        self.offset += layout.size
        return value

    def _check_length(self, count: int, item_size: int, kind: str, start: int) -> None:
        left = len(self.buffer) - self.offset
        if count < 0 or count * item_size > left:
            raise UnitySideChannelMessageException(
                f"{kind} at byte {start} declares {count} items of {item_size} bytes but "
                f"{left} bytes are left in the message"
            )
