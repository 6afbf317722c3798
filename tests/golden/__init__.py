"""Protobuf classes generated from ../../protos (see regenerate.py): built independently
of the Rust codec, they make golden messages for the tests."""
