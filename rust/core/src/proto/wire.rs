//! Protobuf wire format: a bounds-checked reader and an appending writer.
//!
//! Only what the communicator messages need: varints, 32-bit fixed values
//! (float), length-delimited fields (strings, bytes, sub-messages, packed
//! repeated scalars). Unknown fields of every wire type are skipped, as
//! protobuf requires, so newer senders stay readable.

use super::ProtoError;

pub const WIRE_VARINT: u8 = 0;
pub const WIRE_FIXED64: u8 = 1;
pub const WIRE_LEN: u8 = 2;
pub const WIRE_START_GROUP: u8 = 3;
pub const WIRE_END_GROUP: u8 = 4;
pub const WIRE_FIXED32: u8 = 5;

/// One field read from a message: its number, and its value by wire type.
#[derive(Debug, Clone, Copy)]
pub enum FieldValue<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Len(&'a [u8]),
}

/// Reads the fields of one message from a byte slice, never past its end.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Message name used in error messages ("AgentInfoProto").
    context: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], context: &'static str) -> Self {
        Reader {
            data,
            pos: 0,
            context,
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> ProtoError {
        ProtoError::Decode(format!(
            "{} at byte {} of {}: {}",
            self.context,
            self.pos,
            self.data.len(),
            message
        ))
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn read_varint(&mut self) -> Result<u64, ProtoError> {
        // Fast path: field keys, ids and flags are almost always one byte.
        if let Some(&byte) = self.data.get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        self.read_varint_slow()
    }

    fn read_varint_slow(&mut self) -> Result<u64, ProtoError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.data.get(self.pos) else {
                return Err(self.error("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(self.error("varint longer than 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| {
                self.error(format!(
                    "field of {n} bytes runs past the end ({} bytes left)",
                    self.data.len().saturating_sub(self.pos)
                ))
            })?;
        self.pos += n;
        Ok(slice)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let bytes = self.take(N)?;
        bytes
            .try_into()
            .map_err(|_| self.error(format!("expected {N} bytes")))
    }

    /// The next field, or None at the end of the message. Groups (deprecated,
    /// never used by the communicator) are rejected as malformed.
    pub fn next_field(&mut self) -> Result<Option<(u32, FieldValue<'a>)>, ProtoError> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let key = self.read_varint()?;
        let field_number = key >> 3;
        if field_number == 0 || field_number > u64::from(u32::MAX >> 3) {
            return Err(self.error(format!("invalid field number {field_number}")));
        }
        let value = match (key & 7) as u8 {
            WIRE_VARINT => FieldValue::Varint(self.read_varint()?),
            WIRE_FIXED64 => FieldValue::Fixed64(u64::from_le_bytes(self.take_array()?)),
            WIRE_LEN => {
                let len = self.read_varint()?;
                let len = usize::try_from(len).map_err(|_| self.error("length overflows"))?;
                FieldValue::Len(self.take(len)?)
            }
            WIRE_FIXED32 => FieldValue::Fixed32(u32::from_le_bytes(self.take_array()?)),
            WIRE_START_GROUP | WIRE_END_GROUP => {
                return Err(self.error(format!(
                    "field {field_number} uses deprecated group encoding"
                )))
            }
            other => return Err(self.error(format!("invalid wire type {other}"))),
        };
        Ok(Some((field_number as u32, value)))
    }
}

fn type_error(context: &str, field: u32, expected: &str) -> ProtoError {
    ProtoError::Decode(format!(
        "{context} field {field}: wrong wire type, expected {expected}"
    ))
}

impl<'a> FieldValue<'a> {
    pub fn as_int32(self, context: &str, field: u32) -> Result<i32, ProtoError> {
        match self {
            // int32 is sign-extended to 64 bits on the wire; truncation is the spec.
            FieldValue::Varint(v) => Ok(v as i32),
            _ => Err(type_error(context, field, "varint")),
        }
    }

    pub fn as_bool(self, context: &str, field: u32) -> Result<bool, ProtoError> {
        match self {
            FieldValue::Varint(v) => Ok(v != 0),
            _ => Err(type_error(context, field, "varint")),
        }
    }

    pub fn as_float(self, context: &str, field: u32) -> Result<f32, ProtoError> {
        match self {
            FieldValue::Fixed32(bits) => Ok(f32::from_bits(bits)),
            _ => Err(type_error(context, field, "fixed32")),
        }
    }

    pub fn as_bytes(self, context: &str, field: u32) -> Result<&'a [u8], ProtoError> {
        match self {
            FieldValue::Len(bytes) => Ok(bytes),
            _ => Err(type_error(context, field, "length-delimited")),
        }
    }

    pub fn as_string(self, context: &str, field: u32) -> Result<String, ProtoError> {
        let bytes = self.as_bytes(context, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            ProtoError::Decode(format!(
                "{context} field {field}: string is not valid UTF-8"
            ))
        })
    }

    /// Appends a repeated int32 field, packed or not (parsers must accept both).
    pub fn push_int32s(
        self,
        out: &mut Vec<i32>,
        context: &str,
        field: u32,
    ) -> Result<(), ProtoError> {
        match self {
            FieldValue::Varint(v) => out.push(v as i32),
            FieldValue::Len(bytes) => {
                let mut reader = Reader::new(bytes, "packed int32");
                while reader.pos < bytes.len() {
                    out.push(reader.read_varint()? as i32);
                }
            }
            _ => return Err(type_error(context, field, "varint or packed")),
        }
        Ok(())
    }

    /// Appends a repeated bool field, packed or not.
    pub fn push_bools(
        self,
        out: &mut Vec<bool>,
        context: &str,
        field: u32,
    ) -> Result<(), ProtoError> {
        match self {
            FieldValue::Varint(v) => out.push(v != 0),
            FieldValue::Len(bytes) => {
                let mut reader = Reader::new(bytes, "packed bool");
                while reader.pos < bytes.len() {
                    out.push(reader.read_varint()? != 0);
                }
            }
            _ => return Err(type_error(context, field, "varint or packed")),
        }
        Ok(())
    }

    /// Appends a repeated float field, packed (a little-endian f32 array) or not.
    pub fn push_floats(
        self,
        out: &mut Vec<f32>,
        context: &str,
        field: u32,
    ) -> Result<(), ProtoError> {
        match self {
            FieldValue::Fixed32(bits) => out.push(f32::from_bits(bits)),
            FieldValue::Len(bytes) => {
                if bytes.len() % 4 != 0 {
                    return Err(ProtoError::Decode(format!(
                        "{context} field {field}: packed floats of {} bytes, not a multiple of 4",
                        bytes.len()
                    )));
                }
                out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            _ => return Err(type_error(context, field, "fixed32 or packed")),
        }
        Ok(())
    }
}

/// Appends protobuf fields to a buffer. Proto3 rules: scalars equal to their
/// default are left out; sub-messages are written whenever present.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    pub fn int32(&mut self, field: u32, value: i32) {
        if value != 0 {
            self.key(field, WIRE_VARINT);
            // Negative int32 values are sign-extended to 10 bytes, as protobuf does.
            self.varint(i64::from(value) as u64);
        }
    }

    pub fn bool(&mut self, field: u32, value: bool) {
        if value {
            self.key(field, WIRE_VARINT);
            self.buf.push(1);
        }
    }

    pub fn float(&mut self, field: u32, value: f32) {
        // Proto3 leaves out +0.0 only; -0.0 has a different bit pattern and is written.
        if value.to_bits() != 0 {
            self.key(field, WIRE_FIXED32);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        if !value.is_empty() {
            self.len_field(field, value);
        }
    }

    pub fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A length-delimited field written even when empty (sub-messages, repeated strings).
    pub fn len_field(&mut self, field: u32, value: &[u8]) {
        self.key(field, WIRE_LEN);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    /// A sub-message built by `build`; always written, even if empty (presence).
    pub fn message(&mut self, field: u32, build: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::new();
        build(&mut inner);
        self.len_field(field, &inner.buf);
    }

    pub fn packed_floats(&mut self, field: u32, values: &[f32]) {
        if values.is_empty() {
            return;
        }
        self.key(field, WIRE_LEN);
        self.varint((values.len() * 4) as u64);
        self.buf.reserve(values.len() * 4);
        for value in values {
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    pub fn packed_int32s(&mut self, field: u32, values: &[i32]) {
        if values.is_empty() {
            return;
        }
        let mut inner = Writer::new();
        for &value in values {
            inner.varint(i64::from(value) as u64);
        }
        self.len_field(field, &inner.buf);
    }

    pub fn packed_bools(&mut self, field: u32, values: &[bool]) {
        if values.is_empty() {
            return;
        }
        self.key(field, WIRE_LEN);
        self.varint(values.len() as u64);
        self.buf.extend(values.iter().map(|&b| u8::from(b)));
    }
}
