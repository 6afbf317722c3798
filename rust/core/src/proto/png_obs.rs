//! PNG-compressed visual observations (PROTOCOL.md B.4, "Decoding").
//!
//! `compressed_data` holds one PNG or several concatenated PNGs. Pixels become
//! `value / 255` floats in CHW order, concatenated over channels. Then either a
//! channel mapping (output channel k = mean of the decoded channels mapped to
//! k, -1 = dropped) or the channel-count rule (1 expected channel = grayscale
//! mean of the first image; otherwise extra channels dropped) gives the final
//! channels, as `mlagents_envs.rpc_utils.process_pixels` does.

use super::ProtoError;

pub const PNG_SIGNATURE: [u8; 8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

/// One decoded image: `channels` planes of `height * width` floats in [0, 1].
struct Planes {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

fn observation_error(message: impl Into<String>) -> ProtoError {
    ProtoError::Observation(message.into())
}

/// The end offset of the PNG that starts at `start` (just past its IEND chunk).
fn png_end(data: &[u8], start: usize) -> Result<usize, ProtoError> {
    let mut pos = start + PNG_SIGNATURE.len();
    loop {
        let header = data.get(pos..pos + 8).ok_or_else(|| {
            observation_error(format!(
                "PNG observation is truncated: no IEND chunk after byte {start}"
            ))
        })?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let chunk_end = pos
            .checked_add(12 + length)
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

fn decode_one_png(bytes: &[u8]) -> Result<Planes, ProtoError> {
    let to_error =
        |err: png::DecodingError| observation_error(format!("invalid PNG observation: {err}"));
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(to_error)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| observation_error("PNG observation is too large to decode"))?;
    let mut buffer = vec![0u8; size];
    let info = reader.next_frame(&mut buffer).map_err(to_error)?;
    let channels = info.color_type.samples();
    let (height, width) = (info.height as usize, info.width as usize);
    let pixels = &buffer[..info.buffer_size()];
    let plane = height * width;
    let mut data = vec![0f32; channels * plane];
    // HWC bytes -> CHW floats, one output plane at a time (sequential writes), through a
    // table instead of a division per value.
    let scale = byte_to_unit();
    for (channel, out_plane) in data.chunks_exact_mut(plane.max(1)).enumerate() {
        for (value, pixel) in out_plane.iter_mut().zip(pixels.chunks_exact(channels)) {
            *value = scale[usize::from(pixel[channel])];
        }
    }
    Ok(Planes {
        channels,
        height,
        width,
        data,
    })
}

/// Decodes `compressed` into `out` (`expected_shape` = `[C, H, W]`, `out.len() == C*H*W`).
pub fn decode_png_observation(
    compressed: &[u8],
    expected_shape: &[usize],
    channel_mapping: &[i32],
    out: &mut [f32],
) -> Result<(), ProtoError> {
    if !compressed.starts_with(&PNG_SIGNATURE) {
        return Err(observation_error(
            "PNG observation does not start with the PNG signature",
        ));
    }
    let mut images = Vec::new();
    let mut start = 0;
    loop {
        let end = png_end(compressed, start)?;
        images.push(decode_one_png(&compressed[start..end])?);
        match find_signature(compressed, end) {
            Some(next) => start = next,
            None => break,
        }
    }
    let (height, width) = (images[0].height, images[0].width);
    if images
        .iter()
        .any(|img| img.height != height || img.width != width)
    {
        return Err(observation_error(
            "concatenated PNG observations have different image sizes",
        ));
    }
    let plane = height * width;
    let expected_channels = expected_shape[0];
    let shape_error = |channels: usize| {
        observation_error(format!(
            "Decompressed observation did not have the expected shape - decompressed had \
             ({channels}, {height}, {width}) but expected {expected_shape:?}"
        ))
    };
    // All decoded planes in order, concatenated over images.
    let planes: Vec<&[f32]> = images
        .iter()
        .flat_map(|img| img.data.chunks_exact(plane))
        .collect();

    if !channel_mapping.is_empty() {
        if channel_mapping.len() != planes.len() {
            return Err(observation_error(format!(
                "Compressed observation and its mapping had different number of channels - \
                 observation had {} channels but its mapping had {} channels",
                planes.len(),
                channel_mapping.len()
            )));
        }
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
        let output_channels = max_mapping as usize + 1;
        if [output_channels, height, width] != expected_shape[..] {
            return Err(shape_error(output_channels));
        }
        for (channel, out_plane) in out.chunks_exact_mut(plane).enumerate() {
            let sources: Vec<&[f32]> = channel_mapping
                .iter()
                .zip(&planes)
                .filter(|(&m, _)| m >= 0 && m as usize == channel)
                .map(|(_, p)| *p)
                .collect();
            let count = sources.len() as f32;
            for (i, value) in out_plane.iter_mut().enumerate() {
                let mut sum = 0f32;
                for source in &sources {
                    sum += source[i];
                }
                *value = sum / count;
            }
        }
        return Ok(());
    }

    if expected_channels == 1 {
        // Grayscale: the mean of the first image's channels.
        let first = &images[0];
        if [1, height, width] != expected_shape[..] {
            return Err(shape_error(1));
        }
        let count = first.channels as f32;
        for (i, value) in out.iter_mut().enumerate() {
            let mut sum = 0f32;
            for channel in 0..first.channels {
                sum += first.data[channel * plane + i];
            }
            *value = sum / count;
        }
        return Ok(());
    }
    // Extra channels are padding added to fill whole 3-channel images: drop them.
    let channels = planes.len().min(expected_channels);
    if [channels, height, width] != expected_shape[..] {
        return Err(shape_error(channels));
    }
    for (out_plane, source) in out.chunks_exact_mut(plane).zip(&planes) {
        out_plane.copy_from_slice(source);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        decode_png_observation(&png, &[3, 2, 4], &[], &mut out).unwrap();
        assert_eq!(out, hwc_to_chw(&hwc, 3));
    }

    #[test]
    fn grayscale_is_channel_mean() {
        let hwc = rgb_image(3, 3, 1);
        let png = encode_png(3, 3, 3, &hwc);
        let mut out = vec![0f32; 9];
        decode_png_observation(&png, &[1, 3, 3], &[], &mut out).unwrap();
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
        decode_png_observation(&data, &[5, 2, 2], &[], &mut out).unwrap();
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
        decode_png_observation(&png, &[1, 1, 2], &[0, -1, 0], &mut out).unwrap();
        for i in 0..2 {
            assert!((out[i] - (chw[i] + chw[4 + i]) / 2.0).abs() < 1e-6);
        }
        let err = decode_png_observation(&png, &[1, 1, 2], &[0, 2, -1], &mut out).unwrap_err();
        assert!(
            matches!(err, ProtoError::Observation(m) if m.contains("Invalid Compressed Channel Mapping"))
        );
        let err = decode_png_observation(&png, &[1, 1, 2], &[0, 0], &mut out).unwrap_err();
        assert!(
            matches!(err, ProtoError::Observation(m) if m.contains("different number of channels"))
        );
    }

    #[test]
    fn wrong_shape_and_garbage_are_errors() {
        let png = encode_png(2, 2, 3, &rgb_image(2, 2, 0));
        let mut out = vec![0f32; 3 * 3 * 3];
        let err = decode_png_observation(&png, &[3, 3, 3], &[], &mut out).unwrap_err();
        assert!(
            matches!(err, ProtoError::Observation(m) if m.contains("did not have the expected shape"))
        );
        let mut out = vec![0f32; 12];
        assert!(decode_png_observation(&png[..png.len() - 5], &[3, 2, 2], &[], &mut out).is_err());
        assert!(decode_png_observation(b"not a png", &[3, 2, 2], &[], &mut out).is_err());
        let mut corrupt = png.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        assert!(decode_png_observation(&corrupt, &[3, 2, 2], &[], &mut out).is_err());
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
            decode_png_observation(&png, &[3, 84, 84], &[], &mut out).unwrap();
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!("{} PNG bytes: best {:.1} us", png.len(), best * 1e6);
    }
}
