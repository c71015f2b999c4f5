//! PNG written by hand from plotters' RGB buffer: 8-bit truecolour, one zlib stream. flate2 and
//! crc32fast are already in the tree; the `png` crate would add a second miniz_oxide.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

use super::ChartError;

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

/// `rgb` is `height` rows of `width` pixels, three bytes each, top row first.
pub(crate) fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, ChartError> {
    let row = width as usize * 3;
    if rgb.len() != row * height as usize {
        return Err(ChartError::Render(format!(
            "{} bytes of pixels for a {width}×{height} image",
            rgb.len()
        )));
    }
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);

    // Filter "Sub" per row: charts are runs of one colour, which it turns into runs of zeros.
    let mut filtered = Vec::with_capacity(rgb.len() + height as usize);
    for line in rgb.chunks_exact(row.max(1)) {
        filtered.push(1);
        for (i, byte) in line.iter().enumerate() {
            let left = if i >= 3 { line[i - 3] } else { 0 };
            filtered.push(byte.wrapping_sub(left));
        }
    }
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    let compressed = zlib
        .write_all(&filtered)
        .and_then(|()| zlib.finish())
        .map_err(|e| ChartError::Render(format!("compressing the PNG: {e}")))?;

    let mut out = Vec::with_capacity(compressed.len() + 64);
    out.extend_from_slice(&SIGNATURE);
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &compressed);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Reads back what [`encode_rgb`] writes, checking every chunk's CRC: width, height and pixels.
#[cfg(test)]
pub(crate) fn decode_rgb(file: &[u8]) -> (u32, u32, Vec<u8>) {
    use std::io::Read;
    assert_eq!(file[..8], SIGNATURE, "PNG signature");
    let (mut at, mut size, mut idat) = (8, (0, 0), Vec::new());
    while at < file.len() {
        let length = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        let kind = &file[at + 4..at + 8];
        let data = &file[at + 8..at + 8 + length];
        let crc = u32::from_be_bytes(file[at + 8 + length..at + 12 + length].try_into().unwrap());
        assert_eq!(
            crc32fast::hash(&file[at + 4..at + 8 + length]),
            crc,
            "CRC of {kind:?}"
        );
        match kind {
            b"IHDR" => {
                size = (
                    u32::from_be_bytes(data[0..4].try_into().unwrap()),
                    u32::from_be_bytes(data[4..8].try_into().unwrap()),
                );
                assert_eq!(data[8..], [8, 2, 0, 0, 0]);
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + length;
    }
    let mut filtered = Vec::new();
    flate2::read::ZlibDecoder::new(idat.as_slice())
        .read_to_end(&mut filtered)
        .unwrap();
    let row = size.0 as usize * 3;
    assert_eq!(
        filtered.len(),
        (row + 1) * size.1 as usize,
        "pixel data for {size:?}"
    );
    let mut rgb = Vec::with_capacity(row * size.1 as usize);
    for line in filtered.chunks_exact(row + 1) {
        assert_eq!(line[0], 1, "Sub filter");
        let start = rgb.len();
        for (i, byte) in line[1..].iter().enumerate() {
            let left = if i >= 3 { rgb[start + i - 3] } else { 0 };
            rgb.push(byte.wrapping_add(left));
        }
    }
    (size.0, size.1, rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        // 2×2: red, green / blue, white.
        let pixels = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let file = encode_rgb(2, 2, &pixels).unwrap();
        assert_eq!(decode_rgb(&file), (2, 2, pixels.to_vec()));
        assert!(encode_rgb(3, 2, &pixels).is_err());
    }
}
