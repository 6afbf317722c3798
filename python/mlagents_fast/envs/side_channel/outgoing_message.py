"""A message to send on a side channel (little-endian primitives, see docs/protocol.md section 8)."""

from __future__ import annotations

import struct

from mlagents_fast.envs.exception import UnityException

__all__ = ["OutgoingMessage"]


class OutgoingMessage:
    """Builds a side-channel payload by appending primitives."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write_bool(self, b: bool) -> None:
        """Append a 1-byte bool."""
        self.buffer += struct.pack("<?", b)

    def write_int32(self, i: int) -> None:
        """Append a little-endian int32."""
        self.buffer += struct.pack("<i", i)

    def write_float32(self, f: float) -> None:
        """Append a little-endian IEEE float32."""
        self.buffer += struct.pack("<f", f)

    def write_float32_list(self, float_list: list[float]) -> None:
        """Append an int32 count followed by the float32 values."""
        self.write_int32(len(float_list))
        for f in float_list:
            self.write_float32(f)

    def write_string(self, s: str) -> None:
        """Append an int32 byte length followed by the ASCII bytes (no terminator)."""
        encoded = s.encode("ascii")
        self.write_int32(len(encoded))
        self.buffer += encoded

    def set_raw_bytes(self, buffer: bytes | bytearray) -> None:
        """Make ``buffer`` the whole payload; only allowed on a message not written to yet."""
        if self.buffer:
            raise UnityException(
                "set_raw_bytes() can only be called on a message that hasn't been written to."
            )
        self.buffer[:] = buffer
