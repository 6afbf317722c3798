"""A message read from a side channel (little-endian primitives, see PROTOCOL.md B.6)."""

from __future__ import annotations

import struct

__all__ = ["IncomingMessage"]


class IncomingMessage:
    """Reads primitives from a side-channel payload, in the order the sender wrote them.

    Reading past the end returns the given default value instead of raising, like ML-Agents.
    """

    def __init__(self, buffer: bytes, offset: int = 0):
        self.buffer = buffer
        self.offset = offset

    def read_bool(self, default_value: bool = False) -> bool:
        """Read a 1-byte bool."""
        if self._at_end_of_buffer():
            return default_value
        (value,) = struct.unpack_from("<?", self.buffer, self.offset)
        self.offset += 1
        return value

    def read_int32(self, default_value: int = 0) -> int:
        """Read a little-endian int32."""
        if self._at_end_of_buffer():
            return default_value
        (value,) = struct.unpack_from("<i", self.buffer, self.offset)
        self.offset += 4
        return value

    def read_float32(self, default_value: float = 0.0) -> float:
        """Read a little-endian IEEE float32."""
        if self._at_end_of_buffer():
            return default_value
        (value,) = struct.unpack_from("<f", self.buffer, self.offset)
        self.offset += 4
        return value

    def read_float32_list(self, default_value: list[float] | None = None) -> list[float]:
        """Read an int32 count followed by that many float32 values."""
        if self._at_end_of_buffer():
            return [] if default_value is None else default_value
        list_len = self.read_int32()
        return [self.read_float32() for _ in range(list_len)]

    def read_string(self, default_value: str = "") -> str:
        """Read an int32 byte length followed by that many ASCII bytes."""
        if self._at_end_of_buffer():
            return default_value
        encoded_len = self.read_int32()
        value = bytes(self.buffer[self.offset : self.offset + encoded_len]).decode("ascii")
        self.offset += encoded_len
        return value

    def get_raw_bytes(self) -> bytes:
        """The whole payload, whatever has been read already."""
        return bytes(self.buffer)

    def _at_end_of_buffer(self) -> bool:
        return self.offset >= len(self.buffer)
