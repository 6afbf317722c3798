//! PNG-compressed visual observations (docs/protocol.md, "PNG observations").
//!
//! `compressed_data` holds one PNG or several concatenated PNGs. Pixels become
//! `value / 255` floats in CHW order, concatenated over channels. Then either a
//! channel mapping (output channel k = mean of the decoded channels mapped to
//! k, -1 = dropped) or the channel-count rule (1 expected channel = grayscale
//! mean of the first image; otherwise extra channels dropped) gives the final
//! channels, as `mlagents_envs.rpc_utils.process_pixels` does.
//!
//! Images are decoded one at a time straight into the output planes. Each
//! image's header is read first: its width and height must be the expected
//! ones and within `max_png_pixels` before a single pixel is decoded, and
//! decoding stops as soon as the mapping (or the expected channel count plus
//! padding) is exhausted, so a message cannot make the decoder work on more
//! pixels than it asked for.

use super::limits::{try_zeroed, DecodeLimits};
use super::ProtoError;

pub const PNG_SIGNATURE: [u8; 8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

fn observation_error(message: impl Into<String>) -> ProtoError {
    ProtoError::Observation(message.into())
}

/// The end offset of the PNG that starts at `start` (just past its IEND chunk).
fn png_end(data: &[u8], start: usize) -> Result<usize, ProtoError> {
    let mut pos = start.saturating_add(PNG_SIGNATURE.len());
    loop {
        let header = pos
            .checked_add(8)
            .and_then(|end| data.get(pos..end))
            .ok_or_else(|| {
                observation_error(format!(
                    "PNG observation is truncated: no IEND chunk after byte {start}"
                ))
            })?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let chunk_end = length
            .checked_add(12)
            .and_then(|size| pos.checked_add(size))
            .filter(|&end| end <= data.len())
            .ok_or_else(|| {
                observation_error(format!(
                    "PNG observation is truncated: chunk at byte {pos} declares {length} bytes"
                ))
            })?;
        if &header[4..8] == b"IEND" {
            return Ok(chunk_end);
        }
        pos = chunk_end;
    }
}

fn find_signature(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .windows(PNG_SIGNATURE.len())
        .position(|window| window == PNG_SIGNATURE)
        .map(|offset| from + offset)
}

/// `i / 255` for every byte value, computed once.
fn byte_to_unit() -> &'static [f32; 256] {
    static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|i| i as f32 / 255.0))
}

/// Width, height and channel count (after expansion to 8-bit samples) from the
/// IHDR chunk, which must come first in a PNG: read before anything is decoded.
fn read_header(png: &[u8]) -> Result<(usize, usize, usize), ProtoError> {
    let ihdr = png
        .get(8..29)
        .filter(|chunk| &chunk[4..8] == b"IHDR")
        .ok_or_else(|| observation_error("invalid PNG observation: no IHDR chunk first"))?;
    let be = |at: usize| u32::from_be_bytes([ihdr[at], ihdr[at + 1], ihdr[at + 2], ihdr[at + 3]]);
    let (width, height) = (be(8) as usize, be(12) as usize);
    // Color types: gray, RGB, palette (expanded to RGB, or RGBA with tRNS), gray+alpha, RGBA.
    let channels = match ihdr[17] {
        0 => 1,
        2 | 3 => 3,
        4 => 2,
        6 => 4,
        other => {
            return Err(observation_error(format!(
                "invalid PNG observation: color type {other}"
            )))
        }
    };
    Ok((width, height, channels))
}

/// Where each decoded channel goes: the plane it fills (None: dropped) and whether
/// it is averaged with others.
enum Target {
    Dropped,
    Store(usize),
    Accumulate(usize),
}

/// Decodes `compressed` into `out` (`expected_shape` = `[C, H, W]`, `out.len() == C*H*W`).
pub fn decode_png_observation(
    compressed: &[u8],
    expected_shape: &[usize],
    channel_mapping: &[i32],
    out: &mut [f32],
    limits: &DecodeLimits,
) -> Result<(), ProtoError> {
    let &[expected_channels, height, width] = expected_shape else {
        return Err(observation_error(format!(
            "a PNG observation needs a shape of rank 3, got {expected_shape:?}"
        )));
    };
    let plane = height
        .checked_mul(width)
        .filter(|&plane| plane.checked_mul(expected_channels) == Some(out.len()))
        .ok_or_else(|| {
            observation_error(format!(
                "PNG observation of shape {expected_shape:?} cannot fill {} values",
                out.len()
            ))
        })?;
    if !compressed.starts_with(&PNG_SIGNATURE) {
        return Err(observation_error(
            "PNG observation does not start with the PNG signature",
        ));
    }
    let shape_error = |channels: usize, h: usize, w: usize| {
        observation_error(format!(
            "Decompressed observation did not have the expected shape - decompressed had \
             ({channels}, {h}, {w}) but expected {expected_shape:?}"
        ))
    };
    let mapping_error = |channels: String| {
        observation_error(format!(
            "Compressed observation and its mapping had different number of channels - \
             observation had {channels} channels but its mapping had {} channels",
            channel_mapping.len()
        ))
    };

    // Check the mapping before decoding: the indices must be contiguous from 0 and
    // give the expected channel count. Planes mapped alone are stored, the others summed
    // (in mapping order, as ML-Agents does) and divided by their count at the end.
    let mut counts = Vec::new();
    if !channel_mapping.is_empty() {
        let max_mapping = channel_mapping.iter().copied().max().unwrap_or(-1);
        let distinct: std::collections::BTreeSet<i32> = channel_mapping
            .iter()
            .copied()
            .filter(|&m| m > -1)
            .collect();
        if max_mapping < 0 || distinct.len() as i64 != i64::from(max_mapping) + 1 {
            return Err(observation_error(format!(
                "Invalid Compressed Channel Mapping: the mapping {channel_mapping:?} does not have \
                 the correct format."
            )));
        }
        let output_channels = distinct.len();
        if output_channels != expected_channels {
            return Err(shape_error(output_channels, height, width));
        }
        counts = vec![0u32; output_channels];
        for &m in channel_mapping.iter().filter(|&&m| m >= 0) {
            counts[m as usize] += 1;
        }
        for (channel, &count) in counts.iter().enumerate() {
            if count > 1 {
                out[channel * plane..(channel + 1) * plane].fill(0.0);
            }
        }
    }
    let target = |k: usize| -> Target {
        if channel_mapping.is_empty() {
            return if k < expected_channels {
                Target::Store(k)
            } else {
                Target::Dropped
            };
        }
        match usize::try_from(channel_mapping[k]) {
            Ok(m) if counts[m] == 1 => Target::Store(m),
            Ok(m) => Target::Accumulate(m),
            Err(_) => Target::Dropped,
        }
    };

    let scale = byte_to_unit();
    let mut pixels = Vec::new();
    let mut decoded_channels = 0usize;
    let mut start = 0;
    loop {
        let end = png_end(compressed, start)?;
        let png = &compressed[start..end];
        let (png_width, png_height, _) = read_header(png)?;
        DecodeLimits::check(
            png_width.checked_mul(png_height),
            limits.max_png_pixels,
            "max_png_pixels",
            || format!("the pixel count of a {png_width}x{png_height} PNG observation"),
        )?;
        if (png_height, png_width) != (height, width) {
            let (_, _, channels) = read_header(png)?;
            return Err(shape_error(channels, png_height, png_width));
        }
        let channels = decode_into(png, &mut pixels, plane)?;
        let grayscale = channel_mapping.is_empty() && expected_channels == 1;
        if grayscale {
            // The mean of the first image's channels; later images are not used.
            let out_plane = &mut out[..plane];
            out_plane.fill(0.0);
            for channel in 0..channels {
                for (value, pixel) in out_plane.iter_mut().zip(pixels.chunks_exact(channels)) {
                    *value += scale[usize::from(pixel[channel])];
                }
            }
            let count = channels as f32;
            out_plane.iter_mut().for_each(|value| *value /= count);
            return Ok(());
        }
        if !channel_mapping.is_empty() && decoded_channels + channels > channel_mapping.len() {
            return Err(mapping_error(format!(
                "more than {}",
                channel_mapping.len()
            )));
        }
        // HWC bytes -> CHW floats, one output plane at a time (sequential writes), through a
        // table instead of a division per value.
        for channel in 0..channels {
            let source = pixels
                .chunks_exact(channels)
                .map(|p| scale[usize::from(p[channel])]);
            match target(decoded_channels + channel) {
                Target::Dropped => {}
                Target::Store(m) => {
                    for (value, sample) in out[m * plane..(m + 1) * plane].iter_mut().zip(source) {
                        *value = sample;
                    }
                }
                Target::Accumulate(m) => {
                    for (value, sample) in out[m * plane..(m + 1) * plane].iter_mut().zip(source) {
                        *value += sample;
                    }
                }
            }
        }
        decoded_channels += channels;
        // Without a mapping, images past the expected channels (padding) are not needed.
        if channel_mapping.is_empty() && decoded_channels >= expected_channels {
            return Ok(());
        }
        match find_signature(compressed, end) {
            Some(next) => start = next,
            None => break,
        }
    }
    if channel_mapping.is_empty() {
        return Err(shape_error(decoded_channels, height, width));
    }
    if decoded_channels != channel_mapping.len() {
        return Err(mapping_error(decoded_channels.to_string()));
    }
    for (channel, &count) in counts.iter().enumerate() {
        if count > 1 {
            let count = count as f32;
            for value in &mut out[channel * plane..(channel + 1) * plane] {
                *value /= count;
            }
        }
    }
    Ok(())
}

/// Decodes one PNG (whose header was checked: `plane` pixels) into `pixels` as 8-bit
/// HWC samples; returns the channel count.
fn decode_into(png: &[u8], pixels: &mut Vec<u8>, plane: usize) -> Result<usize, ProtoError> {
    let to_error =
        |err: png::DecodingError| observation_error(format!("invalid PNG observation: {err}"));
    // The decoder's own buffers (rows, ancillary chunks) stay within 64 MiB plus a few rows.
    let width = png
        .get(16..20)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let limits = png::Limits {
        bytes: (64usize << 20).saturating_add((width as usize).saturating_mul(16)),
    };
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(png), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(to_error)?;
    let size = reader
        .output_buffer_size()
        .filter(|&size| plane.checked_mul(4).is_some_and(|most| size <= most))
        .ok_or_else(|| observation_error("PNG observation is too large to decode"))?;
    // Fresh zeroed memory, reused when the next image has the same size: a large
    // image whose data turns out to be garbage costs no more than the rows it had.
    if pixels.len() != size {
        *pixels = try_zeroed::<u8>(size, "a PNG image")?;
    }
    let info = reader.next_frame(pixels).map_err(to_error)?;
    let channels = info.color_type.samples();
    // The planes are read from the first plane * channels samples: the frame must hold them.
    plane
        .checked_mul(channels)
        .filter(|&used| used <= info.buffer_size() && used <= pixels.len())
        .ok_or_else(|| {
            observation_error("invalid PNG observation: frame smaller than its header")
        })?;
    Ok(channels)
}

/// Test helpers shared with the message decoder's tests.
#[cfg(test)]
pub(crate) mod tests_support {
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
        out
    }

    /// A PNG whose IHDR claims `width x height` RGB pixels, with almost no pixel data.
    pub fn png_with_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = super::PNG_SIGNATURE.to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        // A stored (uncompressed) zlib block of 100 zero bytes.
        let mut idat = vec![0x78, 0x01, 0x01, 100, 0, !100, 0xff];
        idat.extend([0u8; 100]);
        png.extend(chunk(b"IDAT", &idat));
        png.extend(chunk(b"IEND", &[]));
        png
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DecodeLimits = DecodeLimits::DEFAULT;

    /// A PNG of `channels` (1, 3 or 4) 8-bit samples per pixel, from HWC bytes.
    pub fn encode_png(width: u32, height: u32, channels: usize, hwc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(match channels {
                1 => png::ColorType::Grayscale,
                3 => png::ColorType::Rgb,
                4 => png::ColorType::Rgba,
                _ => unreachable!(),
            });
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(hwc).unwrap();
        }
        out
    }

    fn rgb_image(width: u32, height: u32, seed: u8) -> Vec<u8> {
        (0..width * height * 3)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    fn hwc_to_chw(hwc: &[u8], channels: usize) -> Vec<f32> {
        let plane = hwc.len() / channels;
        let mut out = vec![0f32; hwc.len()];
        for (i, &v) in hwc.iter().enumerate() {
            out[(i % channels) * plane + i / channels] = f32::from(v) / 255.0;
        }
        out
    }

    #[test]
    fn single_rgb_png_to_chw() {
        let hwc = rgb_image(4, 2, 7);
        let png = encode_png(4, 2, 3, &hwc);
        let mut out = vec![0f32; 3 * 2 * 4];
        decode_png_observation(&png, &[3, 2, 4], &[], &mut out, &LIMITS).unwrap();
        assert_eq!(out, hwc_to_chw(&hwc, 3));
    }

    #[test]
    fn grayscale_is_channel_mean() {
        let hwc = rgb_image(3, 3, 1);
        let png = encode_png(3, 3, 3, &hwc);
        let mut out = vec![0f32; 9];
        decode_png_observation(&png, &[1, 3, 3], &[], &mut out, &LIMITS).unwrap();
        let chw = hwc_to_chw(&hwc, 3);
        for i in 0..9 {
            let expected = (chw[i] + chw[9 + i] + chw[18 + i]) / 3.0;
            assert!((out[i] - expected).abs() < 1e-6);
        }
    }

    #[test]
    fn concatenated_pngs_with_dropped_padding_channels() {
        let first = rgb_image(2, 2, 3);
        let second = rgb_image(2, 2, 9);
        let mut data = encode_png(2, 2, 3, &first);
        data.extend(encode_png(2, 2, 3, &second));
        let mut out = vec![0f32; 5 * 4];
        decode_png_observation(&data, &[5, 2, 2], &[], &mut out, &LIMITS).unwrap();
        let mut expected = hwc_to_chw(&first, 3);
        expected.extend(&hwc_to_chw(&second, 3)[..8]);
        assert_eq!(out, expected);
    }

    #[test]
    fn channel_mapping_averages_and_drops() {
        let hwc = rgb_image(2, 1, 5);
        let png = encode_png(2, 1, 3, &hwc);
        let chw = hwc_to_chw(&hwc, 3);
        let mut out = vec![0f32; 2];
        // channels 0 and 2 -> output 0, channel 1 dropped
        decode_png_observation(&png, &[1, 1, 2], &[0, -1, 0], &mut out, &LIMITS).unwrap();
        for i in 0..2 {
            assert!((out[i] - (chw[i] + chw[4 + i]) / 2.0).abs() < 1e-6);
        }
        let err =
            decode_png_observation(&png, &[1, 1, 2], &[0, 2, -1], &mut out, &LIMITS).unwrap_err();
        assert!(
            matches!(err, ProtoError::Observation(m) if m.contains("Invalid Compressed Channel Mapping"))
        );
        let err = decode_png_observation(&png, &[1, 1, 2], &[0, 0], &mut out, &LIMITS).unwrap_err();
        assert!(
            matches!(err, ProtoError::Observation(m) if m.contains("different number of channels"))
        );
    }

    #[test]
    fn wrong_shape_and_garbage_are_errors() {
        let png = encode_png(2, 2, 3, &rgb_image(2, 2, 0));
        let mut out = vec![0f32; 3 * 3 * 3];
        let err = decode_png_observation(&png, &[3, 3, 3], &[], &mut out, &LIMITS).unwrap_err();
        assert!(
            matches!(err, ProtoError::Observation(m) if m.contains("did not have the expected shape"))
        );
        let mut out = vec![0f32; 12];
        assert!(
            decode_png_observation(&png[..png.len() - 5], &[3, 2, 2], &[], &mut out, &LIMITS)
                .is_err()
        );
        assert!(decode_png_observation(b"not a png", &[3, 2, 2], &[], &mut out, &LIMITS).is_err());
        let mut corrupt = png.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        assert!(decode_png_observation(&corrupt, &[3, 2, 2], &[], &mut out, &LIMITS).is_err());
    }

    #[test]
    #[ignore]
    fn time_84x84_rgb_decode() {
        let hwc: Vec<u8> = (0..84 * 84 * 3)
            .map(|i: u32| ((i / 3 % 84) * 2 + (i / 252) + (i * 7919 % 13)) as u8)
            .collect();
        let png = encode_png(84, 84, 3, &hwc);
        let mut out = vec![0f32; 3 * 84 * 84];
        let mut best = f64::MAX;
        for _ in 0..300 {
            let start = std::time::Instant::now();
            decode_png_observation(&png, &[3, 84, 84], &[], &mut out, &LIMITS).unwrap();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!("{} PNG bytes: best {:.1} us", png.len(), best * 1e6);
    }
}
