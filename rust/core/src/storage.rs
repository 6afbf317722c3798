//! Field files: the binary format in which the replay buffer and AgentBuffer
//! save a set of named columns. Never pickle; every byte is described here and
//! in `docs/file-format.md`.
//!
//! # Layout (versions 1 and 2, all integers little-endian)
//!
//! ```text
//! offset  size  what
//! 0       8     magic  b"\x89MLFAST\n"  (the high byte and newline catch text-mode mangling)
//! 8       4     u32 format version (1, or 2 when the file holds a ragged field)
//! 12      4     u32 header length H: bytes from offset 0 up to and including the header CRC
//! 16      2     u16 kind length K, then K bytes of UTF-8 kind ("replay_buffer", "agent_buffer", ...)
//! ..      4     u32 field count N
//!         N field records, each:
//!           2     u16 name length L, then L bytes of UTF-8 name (unique, non-empty)
//!           1     (version 2 only) u8 layout: 0 dense, 1 ragged
//!           1     u8 dtype code: 1 f32, 2 f64, 3 i32, 4 i64, 5 u8, 6 bool (one byte, 0 or 1)
//!           1     u8 row rank R (0 = scalar rows), then R x u64 row-shape dimensions
//!                 (ragged: the shape of one member)
//!           8     u64 row count (ragged: the number of entries)
//!           8     (ragged only) u64 member count M
//!           8     u64 data offset (absolute, a multiple of 64)
//!           8     u64 data length in bytes: dense, rows x prod(row shape) x item size;
//!                 ragged, 8 x (rows + 1) + M x prod(row shape) x item size
//! H-4     4     u32 CRC-32 of bytes [0, H-4): lets a damaged header be reported before any data is read
//! ..            zero padding to the first data offset; field data in record order, each
//!               C-order (row-major) raw little-endian values, each starting at a 64-byte
//!               aligned offset with zero padding between
//! E       4     u32 CRC-32 (IEEE, as `crc32fast`) of every byte in [0, E)
//! E+4     4     end marker b"MLFE"
//! ```
//!
//! A ragged field is a sequence of entries, each a list of 0 or more *members* of one
//! shape (ML-Agents' group entries: one list of arrays per step). Its data is `rows + 1`
//! u64 offsets (0 first, non-decreasing, M last: entry i is members `[offsets[i],
//! offsets[i+1])`) followed by the M members' values, C order. A file without ragged
//! fields is written as version 1, byte for byte what builds before version 2 wrote.
//!
//! The file length is therefore known from the header alone: a shorter file is
//! *truncated*, a longer one has *trailing bytes*; both are rejected.
//!
//! Writing is atomic: the bytes go to a temporary file in the destination
//! directory, which is flushed to disk (`fsync`) and then renamed over the
//! destination, so a reader sees either the old file or the complete new one.
//!
//! Reading is all-or-nothing: a file with the wrong magic (foreign), a newer
//! version, another `kind`, a damaged header, wrong length or a checksum
//! mismatch gives [`CoreError::CorruptFile`] naming the problem, and no field
//! is returned.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{CoreError, CoreResult};

/// First eight bytes of every field file.
pub const MAGIC: [u8; 8] = *b"\x89MLFAST\n";
/// Last four bytes of every field file.
pub const END_MARKER: [u8; 4] = *b"MLFE";
/// Newest version this build writes and reads; files with a larger version are refused.
pub const FORMAT_VERSION: u32 = 2;
/// The version of files without ragged fields (readable by builds before version 2).
pub const DENSE_FORMAT_VERSION: u32 = 1;
const LAYOUT_DENSE: u8 = 0;
const LAYOUT_RAGGED: u8 = 1;
/// Every field's data starts at a multiple of this many bytes.
pub const DATA_ALIGNMENT: u64 = 64;
const TRAILER_LEN: u64 = 8;
const MAX_ROW_RANK: usize = 32;

/// Element type of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    F32,
    F64,
    I32,
    I64,
    U8,
    /// One byte per value, 0 or 1 (numpy's `bool_`).
    Bool,
}

impl Dtype {
    /// Code stored in the file.
    pub fn code(self) -> u8 {
        match self {
            Dtype::F32 => 1,
            Dtype::F64 => 2,
            Dtype::I32 => 3,
            Dtype::I64 => 4,
            Dtype::U8 => 5,
            Dtype::Bool => 6,
        }
    }

    pub fn from_code(code: u8) -> Option<Dtype> {
        Some(match code {
            1 => Dtype::F32,
            2 => Dtype::F64,
            3 => Dtype::I32,
            4 => Dtype::I64,
            5 => Dtype::U8,
            6 => Dtype::Bool,
            _ => return None,
        })
    }

    /// Bytes per value.
    pub fn item_size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// The numpy name of the type ("float32", ...).
    pub fn numpy_name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::Bool => "bool",
        }
    }

    /// Parses a numpy dtype name ("float32", "f4", "bool", ...).
    pub fn from_numpy_name(name: &str) -> Option<Dtype> {
        Some(match name {
            "float32" | "f4" | "<f4" => Dtype::F32,
            "float64" | "f8" | "<f8" => Dtype::F64,
            "int32" | "i4" | "<i4" => Dtype::I32,
            "int64" | "i8" | "<i8" => Dtype::I64,
            "uint8" | "u1" | "|u1" => Dtype::U8,
            "bool" | "bool_" | "?" | "|b1" => Dtype::Bool,
            _ => return None,
        })
    }
}

/// Borrowed values of one field, flat in row-major order.
#[derive(Clone, Copy, Debug)]
pub enum FieldSlice<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    Bool(&'a [bool]),
}

/// Owned values of one field, flat in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValues {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

/// Applies `$body` to the typed vector or slice inside any of the enums above,
/// bound as `$v`. Keeps per-dtype boilerplate out of every caller.
#[macro_export]
macro_rules! with_field_values {
    ($enum:ident, $value:expr, $v:ident => $body:expr) => {
        match $value {
            $enum::F32($v) => $body,
            $enum::F64($v) => $body,
            $enum::I32($v) => $body,
            $enum::I64($v) => $body,
            $enum::U8($v) => $body,
            $enum::Bool($v) => $body,
        }
    };
}

impl<'a> FieldSlice<'a> {
    pub fn dtype(&self) -> Dtype {
        match self {
            FieldSlice::F32(_) => Dtype::F32,
            FieldSlice::F64(_) => Dtype::F64,
            FieldSlice::I32(_) => Dtype::I32,
            FieldSlice::I64(_) => Dtype::I64,
            FieldSlice::U8(_) => Dtype::U8,
            FieldSlice::Bool(_) => Dtype::Bool,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        with_field_values!(FieldSlice, self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes in this machine's byte order.
    pub fn native_bytes(&self) -> &'a [u8] {
        with_field_values!(FieldSlice, *self, v => as_bytes(v))
    }
}

impl FieldValues {
    pub fn dtype(&self) -> Dtype {
        self.as_slice().dtype()
    }

    pub fn len(&self) -> usize {
        with_field_values!(FieldValues, self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> FieldSlice<'_> {
        match self {
            FieldValues::F32(v) => FieldSlice::F32(v),
            FieldValues::F64(v) => FieldSlice::F64(v),
            FieldValues::I32(v) => FieldSlice::I32(v),
            FieldValues::I64(v) => FieldSlice::I64(v),
            FieldValues::U8(v) => FieldSlice::U8(v),
            FieldValues::Bool(v) => FieldSlice::Bool(v),
        }
    }

    /// The raw bytes in this machine's byte order, writable.
    ///
    /// # Safety
    /// Only bytes that form valid values of the dtype may be written: for
    /// `Bool`, each byte must be 0 or 1 (e.g. bytes copied from other bools).
    pub unsafe fn native_bytes_mut(&mut self) -> &mut [u8] {
        match self {
            FieldValues::F32(v) => as_bytes_mut(v),
            FieldValues::F64(v) => as_bytes_mut(v),
            FieldValues::I32(v) => as_bytes_mut(v),
            FieldValues::I64(v) => as_bytes_mut(v),
            FieldValues::U8(v) => v,
            // SAFETY: bool is one byte; the caller promises to write only 0 or 1.
            FieldValues::Bool(v) => unsafe {
                std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len())
            },
        }
    }

    /// `len` zero values of `dtype`.
    pub fn zeros(dtype: Dtype, len: usize) -> FieldValues {
        match dtype {
            Dtype::F32 => FieldValues::F32(vec![0.0; len]),
            Dtype::F64 => FieldValues::F64(vec![0.0; len]),
            Dtype::I32 => FieldValues::I32(vec![0; len]),
            Dtype::I64 => FieldValues::I64(vec![0; len]),
            Dtype::U8 => FieldValues::U8(vec![0; len]),
            Dtype::Bool => FieldValues::Bool(vec![false; len]),
        }
    }
}

/// One field to save: `rows` rows of shape `row_shape`, values flat in row-major order.
///
/// With `entry_offsets` the field is ragged: `rows` entries, entry i made of the members
/// `[entry_offsets[i], entry_offsets[i+1])` (each of shape `row_shape`), and `values` holds
/// every member; `entry_offsets` has `rows + 1` values, 0 first, non-decreasing.
#[derive(Clone, Copy, Debug)]
pub struct FieldRef<'a> {
    pub name: &'a str,
    pub row_shape: &'a [usize],
    pub rows: usize,
    pub values: FieldSlice<'a>,
    pub entry_offsets: Option<&'a [u64]>,
}

impl<'a> FieldRef<'a> {
    /// A dense field: `rows` rows of shape `row_shape`.
    pub fn dense(
        name: &'a str,
        row_shape: &'a [usize],
        rows: usize,
        values: FieldSlice<'a>,
    ) -> FieldRef<'a> {
        FieldRef {
            name,
            row_shape,
            rows,
            values,
            entry_offsets: None,
        }
    }
}

/// One loaded field (`entry_offsets` as in [`FieldRef`], for ragged fields).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldData {
    pub name: String,
    pub row_shape: Vec<usize>,
    pub rows: usize,
    pub values: FieldValues,
    pub entry_offsets: Option<Vec<u64>>,
}

/// Plain-old-data element types whose every bit pattern is a valid value
/// (so a file's bytes can be read straight into them). `bool` is not one.
trait Pod: Copy + Default {
    /// Converts a value read as little-endian bytes into native order.
    fn le_to_native(self) -> Self;
}

macro_rules! impl_pod_int {
    ($($t:ty),*) => {$(impl Pod for $t {
        fn le_to_native(self) -> Self { <$t>::from_le(self) }
    })*};
}
impl_pod_int!(i32, i64, u64, u8);
impl Pod for f32 {
    fn le_to_native(self) -> Self {
        f32::from_bits(u32::from_le(self.to_bits()))
    }
}
impl Pod for f64 {
    fn le_to_native(self) -> Self {
        f64::from_bits(u64::from_le(self.to_bits()))
    }
}

fn as_bytes<T: Copy>(values: &[T]) -> &[u8] {
    // SAFETY: T is one of f32/f64/i32/i64/u8/bool (no padding, no pointers);
    // viewing initialized values as bytes is always valid, and u8 has alignment 1.
    unsafe {
        std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
    }
}

fn as_bytes_mut<T: Pod>(values: &mut [T]) -> &mut [u8] {
    // SAFETY: Pod types accept any bit pattern, so writing arbitrary bytes keeps them valid.
    unsafe {
        std::slice::from_raw_parts_mut(
            values.as_mut_ptr().cast::<u8>(),
            std::mem::size_of_val(values),
        )
    }
}

fn io_error(path: &Path, action: &str, err: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        message: format!("{action}: {err}"),
    }
}

fn corrupt(path: &Path, message: impl Into<String>) -> CoreError {
    CoreError::CorruptFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn align_up(offset: u64) -> u64 {
    offset.div_ceil(DATA_ALIGNMENT) * DATA_ALIGNMENT
}

fn checked_row_len(row_shape: &[usize]) -> Option<usize> {
    row_shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Bytes of the offsets of a ragged field of `entries` entries.
fn offsets_len(entries: usize) -> usize {
    8 * (entries + 1)
}

/// Bytes of a field's data region (ragged: offsets, then values).
fn data_len(field: &FieldRef<'_>) -> usize {
    let values = field.values.native_bytes().len();
    match field.entry_offsets {
        Some(_) => offsets_len(field.rows) + values,
        None => values,
    }
}

/// Checks the offsets of a ragged field of `entries` entries; returns the member count.
fn check_entry_offsets(offsets: &[u64], entries: usize) -> Result<usize, String> {
    if offsets.len() != entries + 1 {
        return Err(format!(
            "{entries} entries need {} offsets, got {}",
            entries + 1,
            offsets.len()
        ));
    }
    if offsets[0] != 0 {
        return Err(format!("the first offset must be 0, got {}", offsets[0]));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(format!(
            "offsets decrease at entry {i} ({} then {})",
            offsets[i],
            offsets[i + 1]
        ));
    }
    usize::try_from(offsets[entries]).map_err(|_| "member count too large".to_string())
}

/// Checks the fields and computes the header bytes and each field's data offset.
fn build_header(kind: &str, fields: &[FieldRef<'_>]) -> CoreResult<(Vec<u8>, Vec<u64>)> {
    if kind.is_empty() || kind.len() > u16::MAX as usize {
        return Err(CoreError::invalid(
            "kind",
            "must be a non-empty string of at most 65535 bytes",
        ));
    }
    let mut names = std::collections::HashSet::with_capacity(fields.len());
    for field in fields {
        let argument = format!("fields[{:?}]", field.name);
        if field.name.is_empty() || field.name.len() > u16::MAX as usize {
            return Err(CoreError::invalid(
                argument,
                "field names must be non-empty and at most 65535 bytes",
            ));
        }
        if !names.insert(field.name) {
            return Err(CoreError::invalid(argument, "field name appears twice"));
        }
        if field.row_shape.len() > MAX_ROW_RANK {
            return Err(CoreError::invalid(
                argument,
                format!("row rank {} exceeds {MAX_ROW_RANK}", field.row_shape.len()),
            ));
        }
        let value_rows = match field.entry_offsets {
            Some(offsets) => check_entry_offsets(offsets, field.rows)
                .map_err(|message| CoreError::invalid(argument.clone(), message))?,
            None => field.rows,
        };
        let expected = checked_row_len(field.row_shape).and_then(|n| n.checked_mul(value_rows));
        if expected != Some(field.values.len()) {
            let what = if field.entry_offsets.is_some() {
                "members"
            } else {
                "rows"
            };
            return Err(CoreError::invalid(
                argument,
                format!(
                    "{value_rows} {what} of shape {:?} need {} values, got {}",
                    field.row_shape,
                    expected.map_or_else(|| "overflowing".to_string(), |n| n.to_string()),
                    field.values.len()
                ),
            ));
        }
    }
    let ragged = fields.iter().any(|f| f.entry_offsets.is_some());
    let version = if ragged {
        FORMAT_VERSION
    } else {
        DENSE_FORMAT_VERSION
    };

    let mut header = Vec::with_capacity(64 + fields.len() * 64);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes()); // header length, patched below
    header.extend_from_slice(&(kind.len() as u16).to_le_bytes());
    header.extend_from_slice(kind.as_bytes());
    header.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    // Offsets of the data-offset slots, patched once the header length is known.
    let mut offset_slots = Vec::with_capacity(fields.len());
    for field in fields {
        header.extend_from_slice(&(field.name.len() as u16).to_le_bytes());
        header.extend_from_slice(field.name.as_bytes());
        if version >= 2 {
            header.push(if field.entry_offsets.is_some() {
                LAYOUT_RAGGED
            } else {
                LAYOUT_DENSE
            });
        }
        header.push(field.values.dtype().code());
        header.push(field.row_shape.len() as u8);
        for &dim in field.row_shape {
            header.extend_from_slice(&(dim as u64).to_le_bytes());
        }
        header.extend_from_slice(&(field.rows as u64).to_le_bytes());
        if let Some(offsets) = field.entry_offsets {
            header.extend_from_slice(&offsets[field.rows].to_le_bytes());
        }
        offset_slots.push(header.len());
        header.extend_from_slice(&0u64.to_le_bytes());
        header.extend_from_slice(&(data_len(field) as u64).to_le_bytes());
    }
    let header_len = header.len() + 4;
    let header_len_u32 = u32::try_from(header_len)
        .map_err(|_| CoreError::invalid("fields", "header larger than 4 GiB"))?;
    header[12..16].copy_from_slice(&header_len_u32.to_le_bytes());
    let mut data_offsets = Vec::with_capacity(fields.len());
    let mut cursor = header_len as u64;
    for (field, slot) in fields.iter().zip(&offset_slots) {
        let offset = align_up(cursor);
        header[*slot..*slot + 8].copy_from_slice(&offset.to_le_bytes());
        data_offsets.push(offset);
        cursor = offset + data_len(field) as u64;
    }
    let header_crc = crc32fast::hash(&header);
    header.extend_from_slice(&header_crc.to_le_bytes());
    Ok((header, data_offsets))
}

/// Writes `bytes` to `file` and feeds them to the checksum.
fn write_hashed(
    file: &mut File,
    hasher: &mut crc32fast::Hasher,
    bytes: &[u8],
    path: &Path,
) -> CoreResult<()> {
    hasher.update(bytes);
    file.write_all(bytes)
        .map_err(|e| io_error(path, "write", e))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file unless the save succeeded.
struct TempFileGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFileGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Saves `fields` to `path` as a field file of `kind`, atomically: the data
/// goes to a temporary file beside `path`, is flushed to disk, then renamed
/// over `path`. On any error `path` is left as it was and the temporary file
/// is removed.
pub fn save_fields(path: &Path, kind: &str, fields: &[FieldRef<'_>]) -> CoreResult<()> {
    let (header, data_offsets) = build_header(kind, fields)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| CoreError::invalid("path", format!("{} names no file", path.display())))?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // `.<name>.<pid>-<n>.tmp`: the pattern `mlagents_fast.atomic_io` writes too and removes
    // at the next start of a run when a killed process left one behind. A leftover with the
    // same pid and number (a recycled pid) is skipped, not overwritten.
    let mut attempts = 0;
    let (temp_path, mut file) = loop {
        let candidate = directory.join(format!(
            ".{}.{}-{}.tmp",
            file_name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match File::options()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => break (candidate, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
            }
            Err(e) => {
                return Err(io_error(
                    path,
                    "cannot create a temporary file beside it",
                    e,
                ))
            }
        }
    };
    let mut guard = TempFileGuard {
        path: temp_path,
        armed: true,
    };

    let mut hasher = crc32fast::Hasher::new();
    write_hashed(&mut file, &mut hasher, &header, path)?;
    let zeros = [0u8; DATA_ALIGNMENT as usize];
    let mut cursor = header.len() as u64;
    for (field, &offset) in fields.iter().zip(&data_offsets) {
        let padding = (offset - cursor) as usize;
        write_hashed(&mut file, &mut hasher, &zeros[..padding], path)?;
        if let Some(offsets) = field.entry_offsets {
            let le: Vec<u8> = offsets.iter().flat_map(|o| o.to_le_bytes()).collect();
            write_hashed(&mut file, &mut hasher, &le, path)?;
        }
        let bytes = field.values.native_bytes();
        if cfg!(target_endian = "little") {
            write_hashed(&mut file, &mut hasher, bytes, path)?;
        } else {
            let swapped = to_little_endian(field.values);
            write_hashed(&mut file, &mut hasher, &swapped, path)?;
        }
        cursor = offset + data_len(field) as u64;
    }
    let crc = hasher.finalize();
    let mut trailer = [0u8; TRAILER_LEN as usize];
    trailer[..4].copy_from_slice(&crc.to_le_bytes());
    trailer[4..].copy_from_slice(&END_MARKER);
    file.write_all(&trailer)
        .map_err(|e| io_error(path, "write", e))?;
    file.sync_all().map_err(|e| io_error(path, "fsync", e))?;
    drop(file);
    fs::rename(&guard.path, path).map_err(|e| io_error(path, "rename into place", e))?;
    guard.armed = false;
    // Make the rename itself durable; not every platform can open a directory.
    if let Ok(dir) = File::open(&directory) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Byte-swapped copy for big-endian machines (the file is always little-endian).
fn to_little_endian(values: FieldSlice<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.native_bytes().len());
    match values {
        FieldSlice::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        FieldSlice::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        FieldSlice::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        FieldSlice::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        FieldSlice::U8(v) => out.extend_from_slice(v),
        FieldSlice::Bool(v) => v.iter().for_each(|&x| out.push(x as u8)),
    }
    out
}

/// One field record parsed from a header, not yet read.
struct FieldRecord {
    name: String,
    dtype: Dtype,
    row_shape: Vec<usize>,
    rows: usize,
    /// Ragged fields: the member count (the data starts with `rows + 1` offsets).
    members: Option<usize>,
    values_len: usize,
    offset: u64,
    byte_len: u64,
}

/// Reads little-endian integers from the header with bounds checks.
struct HeaderReader<'a> {
    bytes: &'a [u8],
    position: usize,
    path: &'a Path,
}

impl<'a> HeaderReader<'a> {
    fn take(&mut self, n: usize, what: &str) -> CoreResult<&'a [u8]> {
        let end = self
            .position
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| corrupt(self.path, format!("header ends inside {what}")))?;
        let out = &self.bytes[self.position..end];
        self.position = end;
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> CoreResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> CoreResult<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> CoreResult<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> CoreResult<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn string(&mut self, len: usize, what: &str) -> CoreResult<String> {
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| corrupt(self.path, format!("{what} is not valid UTF-8")))
    }
}

/// What a field file holds, from its header alone.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSummary {
    pub kind: String,
    pub version: u32,
    /// (name, dtype, row shape, row count) per field, in file order.
    pub fields: Vec<(String, Dtype, Vec<usize>, usize)>,
}

struct ParsedHeader {
    kind: String,
    version: u32,
    /// The raw header bytes, hashed again for the whole-file checksum.
    header: Vec<u8>,
    records: Vec<FieldRecord>,
    file_len: u64,
}

fn read_header(file: &mut File, path: &Path) -> CoreResult<ParsedHeader> {
    let actual_len = file
        .metadata()
        .map_err(|e| io_error(path, "stat", e))?
        .len();
    if actual_len == 0 {
        return Err(corrupt(path, "empty file (0 bytes), not a field file"));
    }
    let mut prefix = [0u8; 16];
    let prefix_len = (actual_len as usize).min(16);
    file.read_exact(&mut prefix[..prefix_len])
        .map_err(|e| io_error(path, "read", e))?;
    if prefix_len < MAGIC.len() || prefix[..8] != MAGIC {
        return Err(corrupt(
            path,
            "not an mlagents-fast field file (wrong magic bytes)",
        ));
    }
    if prefix_len < 16 {
        return Err(corrupt(path, format!("truncated: only {actual_len} bytes")));
    }
    let version = u32::from_le_bytes(prefix[8..12].try_into().unwrap());
    if version == 0 || version > FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!(
                "format version {version} is not supported (this build reads versions 1 to \
                 {FORMAT_VERSION}); it was written by a newer mlagents-fast"
            ),
        ));
    }
    let header_len = u32::from_le_bytes(prefix[12..16].try_into().unwrap()) as u64;
    if header_len < 16 + 4 + 2 + 4 {
        return Err(corrupt(
            path,
            format!("header length {header_len} is too small"),
        ));
    }
    if header_len + TRAILER_LEN > actual_len {
        return Err(corrupt(
            path,
            format!(
                "truncated: header alone needs {} bytes, file has {actual_len}",
                header_len + TRAILER_LEN
            ),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    header[..16].copy_from_slice(&prefix);
    file.read_exact(&mut header[16..])
        .map_err(|e| io_error(path, "read", e))?;
    let body_len = header.len() - 4;
    let stored_crc = u32::from_le_bytes(header[body_len..].try_into().unwrap());
    if crc32fast::hash(&header[..body_len]) != stored_crc {
        return Err(corrupt(
            path,
            "header checksum mismatch (header is damaged)",
        ));
    }

    let mut reader = HeaderReader {
        bytes: &header[..body_len],
        position: 16,
        path,
    };
    let kind_len = reader.u16("kind length")? as usize;
    let kind = reader.string(kind_len, "kind")?;
    let field_count = reader.u32("field count")? as usize;
    let mut records: Vec<FieldRecord> = Vec::with_capacity(field_count.min(4096));
    let mut expected_offset = header_len;
    for index in 0..field_count {
        let name_len = reader.u16("field name length")? as usize;
        let name = reader.string(name_len, "field name")?;
        let what = |s: &str| format!("{s} of field {name:?}");
        let ragged = if version >= 2 {
            match reader.u8(&what("layout"))? {
                LAYOUT_DENSE => false,
                LAYOUT_RAGGED => true,
                other => {
                    return Err(corrupt(
                        path,
                        format!("field {name:?} has unknown layout {other}"),
                    ))
                }
            }
        } else {
            false
        };
        let code = reader.u8(&what("dtype"))?;
        let dtype = Dtype::from_code(code).ok_or_else(|| {
            corrupt(
                path,
                format!("field {name:?} has unknown dtype code {code}"),
            )
        })?;
        let rank = reader.u8(&what("row rank"))? as usize;
        if rank > MAX_ROW_RANK {
            return Err(corrupt(path, format!("field {name:?} has row rank {rank}")));
        }
        let mut row_shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            let dim = reader.u64(&what("row shape"))?;
            row_shape.push(usize::try_from(dim).map_err(|_| {
                corrupt(
                    path,
                    format!("field {name:?} has dimension {dim} too large"),
                )
            })?);
        }
        let rows = reader.u64(&what("row count"))?;
        let members = if ragged {
            Some(reader.u64(&what("member count"))?)
        } else {
            None
        };
        let offset = reader.u64(&what("data offset"))?;
        let byte_len = reader.u64(&what("data length"))?;
        let value_rows = members.unwrap_or(rows);
        let values_len = usize::try_from(value_rows)
            .ok()
            .and_then(|n| checked_row_len(&row_shape)?.checked_mul(n));
        let offsets_bytes = match members {
            Some(_) => usize::try_from(rows)
                .ok()
                .and_then(|n| n.checked_add(1)?.checked_mul(8)),
            None => Some(0),
        };
        let expected_bytes = values_len
            .and_then(|n| n.checked_mul(dtype.item_size()))
            .and_then(|n| n.checked_add(offsets_bytes?));
        if expected_bytes.map(|n| n as u64) != Some(byte_len) {
            let shape = match members {
                Some(m) => format!("{rows} entries of {m} members of shape {row_shape:?}"),
                None => format!("{rows} rows of shape {row_shape:?}"),
            };
            return Err(corrupt(
                path,
                format!(
                    "field {name:?}: data length {byte_len} does not match {shape} {}",
                    dtype.numpy_name()
                ),
            ));
        }
        if offset != align_up(expected_offset) {
            return Err(corrupt(
                path,
                format!("field {name:?} (number {index}): data offset {offset} is out of place"),
            ));
        }
        if records.iter().any(|r| r.name == name) {
            return Err(corrupt(path, format!("field {name:?} appears twice")));
        }
        expected_offset = offset
            .checked_add(byte_len)
            .filter(|&end| end <= actual_len)
            .ok_or_else(|| {
                corrupt(
                    path,
                    format!("truncated: field {name:?} extends past the end of the file ({actual_len} bytes)"),
                )
            })?;
        records.push(FieldRecord {
            name,
            dtype,
            row_shape,
            rows: rows as usize,
            members: members.map(|m| m as usize),
            values_len: values_len.unwrap_or(0),
            offset,
            byte_len,
        });
    }
    if reader.position != body_len {
        return Err(corrupt(
            path,
            format!(
                "header has {} unexpected bytes after the field records",
                body_len - reader.position
            ),
        ));
    }
    let file_len = expected_offset + TRAILER_LEN;
    if actual_len < file_len {
        return Err(corrupt(
            path,
            format!("truncated: expected {file_len} bytes, file has {actual_len}"),
        ));
    }
    if actual_len > file_len {
        return Err(corrupt(
            path,
            format!(
                "{} trailing bytes after the end of the data (expected {file_len} bytes)",
                actual_len - file_len
            ),
        ));
    }
    Ok(ParsedHeader {
        kind,
        version,
        header,
        records,
        file_len,
    })
}

fn open(path: &Path) -> CoreResult<File> {
    File::open(path).map_err(|e| io_error(path, "open", e))
}

/// Reads only the header: kind, version and the fields' names, dtypes and shapes.
/// Does not verify the data checksum.
pub fn inspect_fields(path: &Path) -> CoreResult<FileSummary> {
    let mut file = open(path)?;
    let parsed = read_header(&mut file, path)?;
    Ok(FileSummary {
        kind: parsed.kind,
        version: parsed.version,
        fields: parsed
            .records
            .into_iter()
            .map(|r| (r.name, r.dtype, r.row_shape, r.rows))
            .collect(),
    })
}

fn read_typed<T: Pod>(
    file: &mut File,
    hasher: &mut crc32fast::Hasher,
    len: usize,
    path: &Path,
) -> CoreResult<Vec<T>> {
    let mut values = vec![T::default(); len];
    let bytes = as_bytes_mut(&mut values);
    file.read_exact(bytes)
        .map_err(|e| io_error(path, "read", e))?;
    hasher.update(bytes);
    if cfg!(target_endian = "big") {
        values.iter_mut().for_each(|v| *v = v.le_to_native());
    }
    Ok(values)
}

/// Reinterprets bytes already checked to be 0 or 1 as bools, without copying.
fn bools_from_bytes(bytes: Vec<u8>) -> Vec<bool> {
    debug_assert!(bytes.iter().all(|&b| b <= 1));
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    // SAFETY: bool has the size and alignment of u8 and every byte is 0 or 1
    // (checked by the caller), so the allocation is a valid Vec<bool>.
    unsafe {
        Vec::from_raw_parts(
            bytes.as_mut_ptr().cast::<bool>(),
            bytes.len(),
            bytes.capacity(),
        )
    }
}

/// Loads every field of the field file at `path`, which must be of `expected_kind`.
/// All-or-nothing: any problem gives [`CoreError::CorruptFile`] (or
/// [`CoreError::Io`] when the file cannot be read) and no data.
pub fn load_fields(path: &Path, expected_kind: &str) -> CoreResult<Vec<FieldData>> {
    let mut file = open(path)?;
    let parsed = read_header(&mut file, path)?;
    check_kind(&parsed, expected_kind, path)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&parsed.header);
    let mut cursor = parsed.header.len() as u64;
    let mut padding = [0u8; DATA_ALIGNMENT as usize];
    let mut fields = Vec::with_capacity(parsed.records.len());
    for record in parsed.records {
        let gap = (record.offset - cursor) as usize;
        file.read_exact(&mut padding[..gap])
            .map_err(|e| io_error(path, "read", e))?;
        hasher.update(&padding[..gap]);
        let entry_offsets = match record.members {
            Some(_) => {
                let offsets: Vec<u64> = read_typed(&mut file, &mut hasher, record.rows + 1, path)?;
                let members = check_entry_offsets(&offsets, record.rows).map_err(|message| {
                    corrupt(path, format!("ragged field {:?}: {message}", record.name))
                })?;
                if Some(members) != record.members {
                    return Err(corrupt(
                        path,
                        format!(
                            "ragged field {:?}: offsets end at {members}, the header says {} \
                             members",
                            record.name,
                            record.members.unwrap_or(0)
                        ),
                    ));
                }
                Some(offsets)
            }
            None => None,
        };
        let n = record.values_len;
        let values = match record.dtype {
            Dtype::F32 => FieldValues::F32(read_typed(&mut file, &mut hasher, n, path)?),
            Dtype::F64 => FieldValues::F64(read_typed(&mut file, &mut hasher, n, path)?),
            Dtype::I32 => FieldValues::I32(read_typed(&mut file, &mut hasher, n, path)?),
            Dtype::I64 => FieldValues::I64(read_typed(&mut file, &mut hasher, n, path)?),
            Dtype::U8 => FieldValues::U8(read_typed(&mut file, &mut hasher, n, path)?),
            Dtype::Bool => {
                let bytes: Vec<u8> = read_typed(&mut file, &mut hasher, n, path)?;
                if let Some(bad) = bytes.iter().position(|&b| b > 1) {
                    return Err(corrupt(
                        path,
                        format!(
                            "bool field {:?} holds byte {} at value {bad}",
                            record.name, bytes[bad]
                        ),
                    ));
                }
                FieldValues::Bool(bools_from_bytes(bytes))
            }
        };
        cursor = record.offset + record.byte_len;
        fields.push(FieldData {
            name: record.name,
            row_shape: record.row_shape,
            rows: record.rows,
            values,
            entry_offsets,
        });
    }
    debug_assert_eq!(cursor + TRAILER_LEN, parsed.file_len);
    check_trailer(&mut file, hasher, path)?;
    Ok(fields)
}

fn check_kind(parsed: &ParsedHeader, expected_kind: &str, path: &Path) -> CoreResult<()> {
    if parsed.kind != expected_kind {
        return Err(corrupt(
            path,
            format!("holds a {:?} file, expected {expected_kind:?}", parsed.kind),
        ));
    }
    Ok(())
}

/// Reads the trailer after the data: end marker, then the CRC of every byte before it.
fn check_trailer(file: &mut File, hasher: crc32fast::Hasher, path: &Path) -> CoreResult<()> {
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.read_exact(&mut trailer)
        .map_err(|e| io_error(path, "read", e))?;
    if trailer[4..] != END_MARKER {
        return Err(corrupt(path, "end marker missing (file is damaged)"));
    }
    let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if hasher.finalize() != stored_crc {
        return Err(corrupt(path, "checksum mismatch (data is damaged)"));
    }
    Ok(())
}

/// Parts of a field's bytes, for [`verify_fields`].
#[derive(Clone, Copy)]
enum Region {
    Padding,
    Offsets,
    Values,
}

/// The checks of [`check_entry_offsets`] on offsets that arrive a chunk at a time.
struct OffsetsCheck<'a> {
    record: &'a FieldRecord,
    seen: usize,
    previous: u64,
}

impl<'a> OffsetsCheck<'a> {
    fn new(record: &'a FieldRecord) -> Self {
        OffsetsCheck {
            record,
            seen: 0,
            previous: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        let name = &self.record.name;
        for word in bytes.chunks_exact(8) {
            let offset = u64::from_le_bytes(word.try_into().unwrap());
            if self.seen == 0 && offset != 0 {
                return Err(format!(
                    "ragged field {name:?}: the first offset must be 0, got {offset}"
                ));
            }
            if offset < self.previous {
                return Err(format!(
                    "ragged field {name:?}: offsets decrease at entry {} ({} then {offset})",
                    self.seen - 1,
                    self.previous
                ));
            }
            self.previous = offset;
            self.seen += 1;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), String> {
        match self.record.members {
            Some(members) if self.previous != members as u64 => Err(format!(
                "ragged field {:?}: offsets end at {}, the header says {members} members",
                self.record.name, self.previous
            )),
            _ => Ok(()),
        }
    }
}

/// Checks a whole field file as [`load_fields`] does (header, every data byte against the
/// checksum, bool values, trailer) without keeping its data: memory stays one small buffer
/// whatever the file's size. `expected_kind` None accepts any kind. Returns the summary.
pub fn verify_fields(path: &Path, expected_kind: Option<&str>) -> CoreResult<FileSummary> {
    let mut file = open(path)?;
    let parsed = read_header(&mut file, path)?;
    if let Some(kind) = expected_kind {
        check_kind(&parsed, kind, path)?;
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&parsed.header);
    let mut cursor = parsed.header.len() as u64;
    let mut chunk = vec![0u8; 1 << 16];
    for record in &parsed.records {
        // Padding, then (ragged fields) the offsets, then the values, through the same
        // hasher as load_fields.
        let offsets_len = match record.members {
            Some(_) => offsets_len(record.rows) as u64,
            None => 0,
        };
        let mut offsets = OffsetsCheck::new(record);
        for (start, len, region) in [
            (cursor, record.offset - cursor, Region::Padding),
            (record.offset, offsets_len, Region::Offsets),
            (
                record.offset + offsets_len,
                record.byte_len - offsets_len,
                Region::Values,
            ),
        ] {
            let mut left = len;
            let mut position = start;
            while left > 0 {
                // Chunks are a multiple of 8 bytes, so no offset straddles two of them.
                let n = left.min(chunk.len() as u64) as usize;
                file.read_exact(&mut chunk[..n])
                    .map_err(|e| io_error(path, "read", e))?;
                hasher.update(&chunk[..n]);
                match region {
                    Region::Offsets => offsets
                        .feed(&chunk[..n])
                        .map_err(|message| corrupt(path, message))?,
                    Region::Values if record.dtype == Dtype::Bool => {
                        if let Some(bad) = chunk[..n].iter().position(|&b| b > 1) {
                            return Err(corrupt(
                                path,
                                format!(
                                    "bool field {:?} holds byte {} at value {}",
                                    record.name,
                                    chunk[bad],
                                    position - start + bad as u64
                                ),
                            ));
                        }
                    }
                    _ => {}
                }
                left -= n as u64;
                position += n as u64;
            }
        }
        offsets.finish().map_err(|message| corrupt(path, message))?;
        cursor = record.offset + record.byte_len;
    }
    check_trailer(&mut file, hasher, path)?;
    Ok(FileSummary {
        kind: parsed.kind,
        version: parsed.version,
        fields: parsed
            .records
            .into_iter()
            .map(|r| (r.name, r.dtype, r.row_shape, r.rows))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct ScratchDir(PathBuf);
    impl ScratchDir {
        fn new(tag: &str) -> ScratchDir {
            let dir = std::env::temp_dir().join(format!(
                "mlagents-fast-storage-{tag}-{}-{}",
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            ScratchDir(dir)
        }
    }
    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sample_fields() -> (Vec<f32>, Vec<bool>, Vec<i64>, Vec<u8>) {
        let obs: Vec<f32> = (0..5 * 3).map(|i| i as f32 * 0.5 - 3.0).collect();
        let done = vec![false, false, true, false, true];
        let steps: Vec<i64> = vec![i64::MIN, -1, 0, 1, i64::MAX];
        let pixels: Vec<u8> = (0..5 * 2 * 2).map(|i| (i * 13) as u8).collect();
        (obs, done, steps, pixels)
    }

    fn save_sample(path: &Path) {
        let (obs, done, steps, pixels) = sample_fields();
        save_fields(
            path,
            "test_kind",
            &[
                FieldRef {
                    name: "obs_0",
                    row_shape: &[3],
                    rows: 5,
                    values: FieldSlice::F32(&obs),
                    entry_offsets: None,
                },
                FieldRef {
                    name: "done",
                    row_shape: &[],
                    rows: 5,
                    values: FieldSlice::Bool(&done),
                    entry_offsets: None,
                },
                FieldRef {
                    name: "step",
                    row_shape: &[],
                    rows: 5,
                    values: FieldSlice::I64(&steps),
                    entry_offsets: None,
                },
                FieldRef {
                    name: "pixels",
                    row_shape: &[2, 2],
                    rows: 5,
                    values: FieldSlice::U8(&pixels),
                    entry_offsets: None,
                },
                FieldRef {
                    name: "empty",
                    row_shape: &[4],
                    rows: 0,
                    values: FieldSlice::F64(&[]),
                    entry_offsets: None,
                },
            ],
        )
        .unwrap();
    }

    /// Writes `bytes` to `path`: load_fields and verify_fields must both refuse it, with
    /// the same message.
    fn assert_refused_alike(path: &Path, bytes: &[u8], case: &str) {
        fs::write(path, bytes).unwrap();
        let message = corrupt_message(load_fields(path, "test_kind"));
        assert!(!message.is_empty(), "{case}");
        let verified = corrupt_message(verify_fields(path, Some("test_kind")));
        assert_eq!(verified, message, "{case}");
        assert_eq!(
            corrupt_message(verify_fields(path, None)),
            message,
            "{case}"
        );
    }

    fn corrupt_message<T: std::fmt::Debug>(result: CoreResult<T>) -> String {
        match result {
            Err(CoreError::CorruptFile { message, .. }) => message,
            other => panic!("expected CorruptFile, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let dir = ScratchDir::new("roundtrip");
        let path = dir.0.join("a.fields");
        save_sample(&path);
        let loaded = load_fields(&path, "test_kind").unwrap();
        let (obs, done, steps, pixels) = sample_fields();
        assert_eq!(loaded.len(), 5);
        assert_eq!(loaded[0].name, "obs_0");
        assert_eq!(loaded[0].row_shape, vec![3]);
        assert_eq!(loaded[0].rows, 5);
        assert_eq!(loaded[0].values, FieldValues::F32(obs));
        assert_eq!(loaded[1].values, FieldValues::Bool(done));
        assert_eq!(loaded[1].row_shape, Vec::<usize>::new());
        assert_eq!(loaded[2].values, FieldValues::I64(steps));
        assert_eq!(loaded[3].values, FieldValues::U8(pixels));
        assert_eq!(loaded[3].row_shape, vec![2, 2]);
        assert_eq!(loaded[4].values, FieldValues::F64(vec![]));
        assert_eq!(loaded[4].rows, 0);
        // NaN payloads and signed zeros survive: the data is copied as bits.
        let odd = [f64::from_bits(0x7ff8_0000_dead_beef), -0.0, f64::INFINITY];
        save_fields(
            &path,
            "test_kind",
            &[FieldRef {
                name: "x",
                row_shape: &[],
                rows: 3,
                values: FieldSlice::F64(&odd),
                entry_offsets: None,
            }],
        )
        .unwrap();
        let FieldValues::F64(back) = &load_fields(&path, "test_kind").unwrap()[0].values else {
            panic!("wrong dtype")
        };
        let bits: Vec<u64> = back.iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, odd.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn data_is_aligned_and_summary_reads_header() {
        let dir = ScratchDir::new("aligned");
        let path = dir.0.join("a.fields");
        save_sample(&path);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], &MAGIC);
        assert_eq!(&bytes[bytes.len() - 4..], &END_MARKER);
        let summary = inspect_fields(&path).unwrap();
        assert_eq!(summary.kind, "test_kind");
        // Dense fields only: version 1, what builds before ragged fields wrote and read.
        assert_eq!(summary.version, DENSE_FORMAT_VERSION);
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
        assert_eq!(
            summary.fields[3],
            ("pixels".to_string(), Dtype::U8, vec![2, 2], 5)
        );
        // The first field's floats start at a 64-byte boundary.
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let first = align_up(header_len as u64) as usize;
        assert_eq!(first % 64, 0);
        assert_eq!(
            f32::from_le_bytes(bytes[first..first + 4].try_into().unwrap()),
            -3.0
        );
    }

    #[test]
    fn every_truncation_is_rejected() {
        let dir = ScratchDir::new("truncated");
        let path = dir.0.join("a.fields");
        save_sample(&path);
        let bytes = fs::read(&path).unwrap();
        let cut = dir.0.join("cut.fields");
        for len in 0..bytes.len() {
            assert_refused_alike(&cut, &bytes[..len], &format!("length {len}"));
        }
        fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
        assert!(corrupt_message(load_fields(&cut, "test_kind")).contains("truncated"));
        fs::write(&cut, b"").unwrap();
        assert!(corrupt_message(load_fields(&cut, "test_kind")).contains("empty"));
        let mut longer = bytes.clone();
        longer.push(0);
        fs::write(&cut, &longer).unwrap();
        assert!(corrupt_message(load_fields(&cut, "test_kind")).contains("trailing"));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let dir = ScratchDir::new("flipped");
        let path = dir.0.join("a.fields");
        save_sample(&path);
        let bytes = fs::read(&path).unwrap();
        let bad = dir.0.join("bad.fields");
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x10;
            assert_refused_alike(&bad, &damaged, &format!("byte {index}"));
        }
        let summary = verify_fields(&path, Some("test_kind")).unwrap();
        assert_eq!(summary.kind, "test_kind");
        assert_eq!(summary.fields.len(), sample_fields_count());
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let mut damaged = bytes.clone();
        damaged[header_len + 70] ^= 1;
        fs::write(&bad, &damaged).unwrap();
        assert!(corrupt_message(load_fields(&bad, "test_kind")).contains("checksum"));
    }

    fn sample_fields_count() -> usize {
        let dir = ScratchDir::new("count");
        let path = dir.0.join("a.fields");
        save_sample(&path);
        inspect_fields(&path).unwrap().fields.len()
    }

    #[test]
    fn verify_finds_a_bad_bool_under_a_valid_checksum() {
        let dir = ScratchDir::new("bool");
        let path = dir.0.join("a.fields");
        let flags = [true, false, true];
        save_fields(
            &path,
            "test_kind",
            &[FieldRef::dense("done", &[], 3, FieldSlice::Bool(&flags))],
        )
        .unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as u64;
        let data = header_len.div_ceil(DATA_ALIGNMENT) * DATA_ALIGNMENT;
        bytes[data as usize + 1] = 2;
        let end = bytes.len() - TRAILER_LEN as usize;
        let crc = crc32fast::hash(&bytes[..end]);
        bytes[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let message = corrupt_message(load_fields(&path, "test_kind"));
        assert!(message.contains("bool field"), "{message}");
        assert_eq!(corrupt_message(verify_fields(&path, None)), message);
        assert!(corrupt_message(verify_fields(&path, Some("replay_buffer"))).contains("expected"));
    }

    #[test]
    fn foreign_newer_and_other_kind_files_are_rejected() {
        let dir = ScratchDir::new("foreign");
        let path = dir.0.join("a.fields");
        save_sample(&path);
        assert!(corrupt_message(load_fields(&path, "replay_buffer")).contains("\"test_kind\""));
        let foreign = dir.0.join("foreign.h5");
        fs::write(&foreign, b"\x89HDF\r\n\x1a\nsome other format entirely").unwrap();
        assert!(corrupt_message(load_fields(&foreign, "test_kind")).contains("magic"));
        let mut newer = fs::read(&path).unwrap();
        newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fs::write(&foreign, &newer).unwrap();
        assert!(corrupt_message(load_fields(&foreign, "test_kind")).contains("newer"));
    }

    #[test]
    fn failed_save_leaves_existing_file_intact() {
        let dir = ScratchDir::new("atomic");
        let path = dir.0.join("a.fields");
        save_sample(&path);
        let before = fs::read(&path).unwrap();
        // Mismatched lengths fail before anything is written.
        let err = save_fields(
            &path,
            "test_kind",
            &[FieldRef {
                name: "x",
                row_shape: &[2],
                rows: 3,
                values: FieldSlice::F32(&[1.0; 5]),
                entry_offsets: None,
            }],
        )
        .unwrap_err();
        assert!(matches!(err, CoreError::InvalidArgument { .. }), "{err:?}");
        // Renaming over a directory fails after the data was written.
        let occupied = dir.0.join("occupied");
        fs::create_dir(&occupied).unwrap();
        fs::write(occupied.join("keep"), b"x").unwrap();
        let err = save_fields(
            &occupied,
            "test_kind",
            &[FieldRef {
                name: "x",
                row_shape: &[],
                rows: 1,
                values: FieldSlice::F32(&[1.0]),
                entry_offsets: None,
            }],
        )
        .unwrap_err();
        assert!(matches!(err, CoreError::Io { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), before);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        // A missing directory is an I/O error, not a panic.
        let err = save_fields(&dir.0.join("missing/a.fields"), "k", &[]).unwrap_err();
        assert!(matches!(err, CoreError::Io { .. }), "{err:?}");
    }

    #[test]
    fn leftover_temp_files_of_a_recycled_pid_are_skipped_not_overwritten() {
        let dir = ScratchDir::new("leftover");
        let path = dir.0.join("a.fields");
        // Leftovers of a killed process that had this pid, at the next counter values.
        let next = TEMP_COUNTER.load(Ordering::Relaxed);
        let leftovers: Vec<PathBuf> = (next..next + 5)
            .map(|n| {
                dir.0
                    .join(format!(".a.fields.{}-{}.tmp", std::process::id(), n))
            })
            .collect();
        for leftover in &leftovers {
            fs::write(leftover, b"old").unwrap();
        }
        save_sample(&path);
        assert!(load_fields(&path, "test_kind").is_ok());
        for leftover in &leftovers {
            assert_eq!(fs::read(leftover).unwrap(), b"old");
        }
    }

    #[test]
    fn duplicate_names_and_bad_kind_are_invalid_arguments() {
        let dir = ScratchDir::new("invalid");
        let path = dir.0.join("a.fields");
        let one = FieldRef {
            name: "x",
            row_shape: &[],
            rows: 1,
            values: FieldSlice::I32(&[7]),
            entry_offsets: None,
        };
        assert!(matches!(
            save_fields(&path, "k", &[one, one]),
            Err(CoreError::InvalidArgument { .. })
        ));
        assert!(matches!(
            save_fields(&path, "", &[one]),
            Err(CoreError::InvalidArgument { .. })
        ));
        assert!(!path.exists());
    }

    /// Group entries: 4 entries of [2, 0, 3, 1] members of shape (2,), plus a dense field.
    fn save_ragged(path: &Path) -> (Vec<u64>, Vec<f32>) {
        let offsets: Vec<u64> = vec![0, 2, 2, 5, 6];
        let members: Vec<f32> = (0..12).map(|i| i as f32 - 0.5).collect();
        let done = [false, true, false, true];
        save_fields(
            path,
            "test_kind",
            &[
                FieldRef::dense("done", &[], 4, FieldSlice::Bool(&done)),
                FieldRef {
                    name: "group_obs_0",
                    row_shape: &[2],
                    rows: 4,
                    values: FieldSlice::F32(&members),
                    entry_offsets: Some(&offsets),
                },
                FieldRef {
                    name: "group_dones",
                    row_shape: &[],
                    rows: 2,
                    values: FieldSlice::Bool(&[]),
                    entry_offsets: Some(&[0, 0, 0]),
                },
            ],
        )
        .unwrap();
        (offsets, members)
    }

    #[test]
    fn ragged_fields_round_trip_as_version_2() {
        let dir = ScratchDir::new("ragged");
        let path = dir.0.join("a.fields");
        let (offsets, members) = save_ragged(&path);
        let loaded = load_fields(&path, "test_kind").unwrap();
        assert_eq!(loaded[0].entry_offsets, None);
        assert_eq!(
            loaded[0].values,
            FieldValues::Bool(vec![false, true, false, true])
        );
        assert_eq!(loaded[1].name, "group_obs_0");
        assert_eq!(loaded[1].rows, 4);
        assert_eq!(loaded[1].row_shape, vec![2]);
        assert_eq!(loaded[1].entry_offsets, Some(offsets));
        assert_eq!(loaded[1].values, FieldValues::F32(members));
        assert_eq!(loaded[2].entry_offsets, Some(vec![0, 0, 0]));
        assert_eq!(loaded[2].values, FieldValues::Bool(vec![]));
        let summary = inspect_fields(&path).unwrap();
        assert_eq!(summary.version, 2);
        assert_eq!(
            summary.fields[1],
            ("group_obs_0".into(), Dtype::F32, vec![2], 4)
        );
    }

    #[test]
    fn every_truncation_and_flipped_bit_of_a_ragged_file_is_rejected() {
        let dir = ScratchDir::new("ragged-damage");
        let path = dir.0.join("a.fields");
        save_ragged(&path);
        let bytes = fs::read(&path).unwrap();
        let bad = dir.0.join("bad.fields");
        for len in 0..bytes.len() {
            assert_refused_alike(&bad, &bytes[..len], &format!("length {len}"));
        }
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x10;
            assert_refused_alike(&bad, &damaged, &format!("byte {index}"));
        }
        let summary = verify_fields(&path, Some("test_kind")).unwrap();
        assert_eq!(summary.version, 2);
    }

    #[test]
    fn inconsistent_offsets_are_refused_on_save_and_load() {
        let dir = ScratchDir::new("ragged-offsets");
        let path = dir.0.join("a.fields");
        let members = [1.0f32, 2.0, 3.0];
        let attempt = |offsets: &[u64], rows: usize| {
            save_fields(
                &path,
                "k",
                &[FieldRef {
                    name: "x",
                    row_shape: &[],
                    rows,
                    values: FieldSlice::F32(&members),
                    entry_offsets: Some(offsets),
                }],
            )
        };
        for (offsets, rows, message) in [
            (&[0u64, 2, 1, 3][..], 3, "decrease"),
            (&[1, 2, 3][..], 2, "first offset"),
            (&[0, 3][..], 2, "offsets"),
            (&[0, 1, 2][..], 2, "values"),
        ] {
            match attempt(offsets, rows) {
                Err(CoreError::InvalidArgument { message: m, .. }) => {
                    assert!(m.contains(message), "{m}")
                }
                other => panic!("{offsets:?}: {other:?}"),
            }
        }
        assert!(!path.exists());
        // A file whose checksums are right but whose offsets decrease (a writer's bug).
        attempt(&[0, 1, 3], 2).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let data = align_up(header_len as u64) as usize;
        bytes[data + 8..data + 16].copy_from_slice(&5u64.to_le_bytes());
        let body = bytes.len() - 8;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..body + 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let message = corrupt_message(load_fields(&path, "k"));
        assert!(message.contains("decrease"), "{message}");
        assert_eq!(corrupt_message(verify_fields(&path, Some("k"))), message);
        // Offsets that rise past the member count (checksums right again).
        bytes[data + 8..data + 16].copy_from_slice(&1u64.to_le_bytes());
        bytes[data + 16..data + 24].copy_from_slice(&2u64.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..body + 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let message = corrupt_message(load_fields(&path, "k"));
        assert!(message.contains("header says 3 members"), "{message}");
        assert_eq!(corrupt_message(verify_fields(&path, Some("k"))), message);
    }
}
