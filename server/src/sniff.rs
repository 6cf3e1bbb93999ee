//! What an uploaded file is, read from its bytes: its content type and, for the raster images a
//! browser may show inline, its size in pixels (so the page can reserve the box before the image
//! loads). Never trusts a name or a type the uploader sent.
//!
//! Pure functions over a byte slice; only the first few kilobytes are looked at (a JPEG's size
//! may sit after its metadata segments, so those are skipped by their lengths, not scanned).

/// The sniffed type of a file, and an image's pixel size when it could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: &'static str,
    pub size: Option<(u32, u32)>,
}

/// The biggest side an image may report before the size is treated as unreadable (a lie in a
/// header must not make the page reserve a box of a million pixels).
const MAX_SIDE: u32 = 65_535;

/// Reads the type (and size) of `bytes`. Text that is valid UTF-8 is `text/plain` — HTML and
/// SVG included, which are text and never served as markup; anything unknown is
/// `application/octet-stream`.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let image = |content_type, size: Option<(u32, u32)>| Sniffed {
        content_type,
        size: size.filter(|&(w, h)| (1..=MAX_SIDE).contains(&w) && (1..=MAX_SIDE).contains(&h)),
    };
    let plain = |content_type| Sniffed {
        content_type,
        size: None,
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        image("image/png", png_size(bytes))
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        image("image/jpeg", jpeg_size(bytes))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        image("image/gif", gif_size(bytes))
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        image("image/webp", webp_size(bytes))
    } else if bytes.starts_with(b"%PDF-") {
        plain("application/pdf")
    } else if bytes.starts_with(b"PK\x03\x04") {
        plain("application/zip")
    } else if is_text(bytes) {
        plain("text/plain; charset=utf-8")
    } else {
        plain("application/octet-stream")
    }
}

/// UTF-8 without control characters other than tab, line breaks and form feed: what a text
/// file holds (binary formats are full of other control bytes, NUL above all).
fn is_text(bytes: &[u8]) -> bool {
    let control = |b: &u8| b.is_ascii_control() && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c);
    !bytes.iter().any(control) && std::str::from_utf8(bytes).is_ok()
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

/// IHDR is always the first chunk: width and height at bytes 16 and 20, big-endian.
fn png_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

/// Logical screen size at bytes 6 and 8, little-endian.
fn gif_size(b: &[u8]) -> Option<(u32, u32)> {
    Some((le16(b, 6)?, le16(b, 8)?))
}

/// Walks the segments to the first start-of-frame marker, which holds the size.
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        // Skip fill bytes before a marker.
        while *b.get(i)? == 0xff && *b.get(i + 1)? == 0xff {
            i += 1;
        }
        if *b.get(i)? != 0xff {
            return None;
        }
        let marker = *b.get(i + 1)?;
        match marker {
            // Start of frame (not DHT 0xC4, JPG 0xC8, DAC 0xCC): length, precision, height, width.
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                return Some((be16(b, i + 7)?, be16(b, i + 5)?));
            }
            // Markers without a length.
            0x01 | 0xd0..=0xd8 => i += 2,
            // End of image or start of scan before any frame: no size to be had.
            0xd9 | 0xda => return None,
            _ => i += 2 + usize::try_from(be16(b, i + 2)?).ok()?,
        }
    }
}

/// The first chunk says which WebP: lossy (`VP8 `), lossless (`VP8L`) or extended (`VP8X`).
fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8 " => Some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff)),
        b"VP8L" => {
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 PNG's first bytes (signature and IHDR).
    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        b.extend(w.to_be_bytes());
        b.extend(h.to_be_bytes());
        b.extend([8, 6, 0, 0, 0]);
        b
    }

    #[test]
    fn images_are_known_by_their_bytes_with_their_size() {
        assert_eq!(
            sniff(&png(3, 2)),
            Sniffed {
                content_type: "image/png",
                size: Some((3, 2))
            }
        );
        assert_eq!(sniff(b"GIF89a\x05\x00\x07\x00rest").size, Some((5, 7)));
        // SOI, an APP0 segment of 16 bytes, then SOF0: precision 8, height 20, width 30.
        let mut jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec();
        jpeg.extend(b"\xff\xc0\x00\x11\x08\x00\x14\x00\x1e\x03");
        assert_eq!(
            sniff(&jpeg),
            Sniffed {
                content_type: "image/jpeg",
                size: Some((30, 20))
            }
        );
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
        webp.extend([9, 0, 0, 4, 0, 0]); // 10 × 5
        assert_eq!(sniff(&webp).size, Some((10, 5)));
        assert_eq!(sniff(&png(0, 2)).size, None, "a zero side is unreadable");
        assert_eq!(sniff(&png(1 << 20, 2)).size, None, "too big to believe");
    }

    #[test]
    fn markup_is_text_and_unknown_bytes_are_opaque() {
        assert_eq!(
            sniff(b"<!doctype html><script>alert(1)</script>").content_type,
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            sniff(b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>").content_type,
            "text/plain; charset=utf-8"
        );
        assert_eq!(sniff(b"%PDF-1.7").content_type, "application/pdf");
        assert_eq!(
            sniff(b"plain\ttext\r\nlines\n").content_type,
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            sniff(&[2u8; 16]).content_type,
            "application/octet-stream",
            "control bytes are not text"
        );
        assert_eq!(
            sniff(b"\x00\x01\x02").content_type,
            "application/octet-stream"
        );
        assert_eq!(sniff(b"\xff\xd8\xff").size, None, "a truncated JPEG");
        assert_eq!(sniff(b"").content_type, "text/plain; charset=utf-8");
    }
}
