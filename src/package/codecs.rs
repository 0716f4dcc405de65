//! What playlists and manifests say about a track: its RFC 6381 codec string
//! (from the avcC, hvcC, esds, dOps… boxes of its sample description), the
//! picture size, the audio channels and rate, and the language.

use crate::media::mp4::Mp4Index;
use crate::media::mp4::boxes::Node;

/// A track as playlists describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackInfo {
    /// `avc1.64001e`, `hvc1.1.6.L93.B0`, `mp4a.40.2`, `opus`, …
    pub codec: String,
    pub width: u16,
    pub height: u16,
    pub channels: u16,
    pub sample_rate: u32,
    /// ISO 639-2/T code from mdhd; `und` when not set.
    pub language: String,
}

impl TrackInfo {
    /// The description of track `t` of `index` (empty fields where the
    /// boxes say nothing).
    pub fn of(index: &Mp4Index, t: usize) -> TrackInfo {
        let Some(trak) = index
            .trak_positions
            .get(t)
            .and_then(|&p| index.tree.children.get(p))
        else {
            return TrackInfo::default();
        };
        let moov = &index.moov;
        let mdia = trak.child(b"mdia");
        let language = mdia
            .and_then(|m| m.child(b"mdhd"))
            .map_or_else(|| "und".to_string(), |mdhd| language(mdhd.payload(moov)));
        let stsd = mdia
            .and_then(|m| m.child(b"minf"))
            .and_then(|m| m.child(b"stbl"))
            .and_then(|s| s.child(b"stsd"));
        let mut info = stsd
            .and_then(|stsd| describe_entry(stsd, moov))
            .unwrap_or_default();
        info.language = language;
        info
    }
}

/// The packed ISO 639-2/T language of an mdhd payload.
fn language(mdhd: &[u8]) -> String {
    let at = if mdhd.first() == Some(&1) { 32 } else { 20 };
    let Some(bytes) = mdhd.get(at..at + 2) else {
        return "und".into();
    };
    let packed = u16::from_be_bytes([bytes[0], bytes[1]]);
    let letters: String = [10u16, 5, 0]
        .iter()
        .map(|shift| (((packed >> shift) & 0x1f) as u8 + 0x60) as char)
        .collect();
    if letters.chars().all(|c| c.is_ascii_lowercase()) {
        letters
    } else {
        "und".into()
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The child boxes of a sample entry, from `at` on: (kind, payload).
fn children(entry: &[u8], mut at: usize) -> Vec<([u8; 4], &[u8])> {
    let mut found = Vec::new();
    while at + 8 <= entry.len() {
        let size = u32_at(entry, at) as usize;
        if size < 8 || at + size > entry.len() {
            break;
        }
        let kind = [entry[at + 4], entry[at + 5], entry[at + 6], entry[at + 7]];
        found.push((kind, &entry[at + 8..at + size]));
        at += size;
    }
    found
}

/// The first sample description of an stsd box.
fn describe_entry(stsd: &Node, moov: &[u8]) -> Option<TrackInfo> {
    let payload = stsd.payload(moov);
    // version and flags, entry count, then the first entry box
    let entry_size = u32_at(payload, 8) as usize;
    let entry = payload.get(8..8 + entry_size)?;
    let format: [u8; 4] = entry.get(4..8)?.try_into().ok()?;
    let name = String::from_utf8_lossy(&format).into_owned();
    let mut info = TrackInfo {
        codec: name.clone(),
        ..TrackInfo::default()
    };
    match &format {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"vp09" | b"av01" | b"mp4v" | b"encv" => {
            // A visual sample entry: 8 + 78 bytes before its child boxes.
            info.width = u16_at(entry, 32);
            info.height = u16_at(entry, 34);
            for (kind, body) in children(entry, 86) {
                match &kind {
                    b"avcC" if body.len() >= 4 => {
                        info.codec =
                            format!("{name}.{:02x}{:02x}{:02x}", body[1], body[2], body[3]);
                    }
                    b"hvcC" => info.codec = hevc_codec(&name, body).unwrap_or(name.clone()),
                    b"av1C" => info.codec = av1_codec(body).unwrap_or(name.clone()),
                    b"vpcC" if body.len() >= 7 => {
                        info.codec =
                            format!("vp09.{:02}.{:02}.{:02}", body[4], body[5], body[6] >> 4);
                    }
                    _ => {}
                }
            }
        }
        _ => {
            // An audio sample entry: 8 + 28 bytes before its child boxes.
            info.channels = u16_at(entry, 24);
            info.sample_rate = u32_at(entry, 32) >> 16;
            for (kind, body) in children(entry, 36) {
                match &kind {
                    b"esds" => {
                        if let Some((codec, channels)) = mp4a_codec(body) {
                            info.codec = codec;
                            // The AudioSpecificConfig is right where the entry's count may not be.
                            if channels > 0 {
                                info.channels = channels;
                            }
                        } else {
                            info.codec = "mp4a.40.2".into();
                        }
                    }
                    b"dOps" => info.codec = "opus".into(),
                    b"dac3" => info.codec = "ac-3".into(),
                    b"dec3" => info.codec = "ec-3".into(),
                    b"dfLa" => info.codec = "flac".into(),
                    _ => {}
                }
            }
        }
    }
    Some(info)
}

/// `av01.<profile>.<level><tier>.<bit depth>` from an av1C box (the AV1
/// codec ISO media file format binding, section 5): the short form, which
/// browsers and Apple's players take; the colour fields are optional.
fn av1_codec(av1c: &[u8]) -> Option<String> {
    let &[marker, profile_level, flags, ..] = av1c else {
        return None;
    };
    if marker & 0x80 == 0 {
        return None;
    }
    let profile = profile_level >> 5;
    let level = profile_level & 0x1f;
    let tier = if flags & 0x80 != 0 { 'H' } else { 'M' };
    let high_bitdepth = flags & 0x40 != 0;
    let twelve_bit = flags & 0x20 != 0;
    let depth = match (profile, high_bitdepth, twelve_bit) {
        (2, true, true) => 12,
        (_, true, _) => 10,
        _ => 8,
    };
    Some(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// `hvc1.<space><profile>.<compatibility>.<tier><level>[.<constraints>]`
/// (ISO/IEC 14496-15 annex E).
fn hevc_codec(name: &str, hvcc: &[u8]) -> Option<String> {
    if hvcc.len() < 13 {
        return None;
    }
    let space = ["", "A", "B", "C"][usize::from(hvcc[1] >> 6)];
    let tier = if hvcc[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = hvcc[1] & 0x1f;
    let compatibility = u32_at(hvcc, 2).reverse_bits();
    let mut codec = format!(
        "{name}.{space}{profile}.{compatibility:X}.{tier}{}",
        hvcc[12]
    );
    let constraints = &hvcc[6..12];
    let kept = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for byte in &constraints[..kept] {
        codec.push_str(&format!(".{byte:X}"));
    }
    Some(codec)
}

/// Reads an MPEG-4 descriptor header at `at`: (tag, length, body start).
fn descriptor(bytes: &[u8], at: usize) -> Option<(u8, usize, usize)> {
    let tag = *bytes.get(at)?;
    let mut length = 0usize;
    let mut i = at + 1;
    for _ in 0..4 {
        let byte = *bytes.get(i)?;
        i += 1;
        length = (length << 7) | usize::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            break;
        }
    }
    Some((tag, length, i))
}

/// `mp4a.40.<audio object type>` from an esds payload (after version and
/// flags), with the channel configuration of its AudioSpecificConfig (0
/// when not given there).
fn mp4a_codec(esds: &[u8]) -> Option<(String, u16)> {
    let (tag, _, mut at) = descriptor(esds, 4)?;
    if tag != 0x03 {
        return None;
    }
    let flags = *esds.get(at + 2)?;
    at += 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*esds.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let (tag, _, at) = descriptor(esds, at)?;
    if tag != 0x04 {
        return None;
    }
    let object_type = *esds.get(at)?;
    if object_type != 0x40 {
        return Some((format!("mp4a.{object_type:02X}"), 0));
    }
    let (tag, _, at) = descriptor(esds, at + 13)?;
    if tag != 0x05 {
        return Some(("mp4a.40.2".into(), 0));
    }
    // AudioSpecificConfig: object type (5 bits, or 5 + 6 when 31), frequency
    // index (4 bits, or 4 + 24 when 15), channel configuration (4 bits).
    let config = esds.get(at..).unwrap_or(&[]);
    let bits = |from: usize, count: usize| -> Option<u32> {
        let mut value = 0u32;
        for bit in from..from + count {
            let byte = *config.get(bit / 8)?;
            value = value << 1 | u32::from(byte >> (7 - bit % 8) & 1);
        }
        Some(value)
    };
    let mut audio_object_type = bits(0, 5)?;
    let mut at_bit = 5;
    if audio_object_type == 31 {
        audio_object_type = 32 + bits(5, 6)?;
        at_bit += 6;
    }
    at_bit += if bits(at_bit, 4)? == 15 { 28 } else { 4 };
    let channels = bits(at_bit, 4).unwrap_or(0) as u16;
    Some((format!("mp4a.40.{audio_object_type}"), channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn av1_strings_come_from_the_av1c_box() {
        // ffmpeg's SVT-AV1 output at 320x180: main profile, level 2.0, 8 bits.
        assert_eq!(
            av1_codec(&[0x81, 0x00, 0x0c, 0x00]).as_deref(),
            Some("av01.0.00M.08")
        );
        // High profile, level 5.1 (index 13), high tier, 10 bits.
        assert_eq!(
            av1_codec(&[0x81, 0x2d, 0xc0, 0x00]).as_deref(),
            Some("av01.1.13H.10")
        );
        // Professional profile, 12 bits.
        assert_eq!(
            av1_codec(&[0x81, 0x48, 0x60]).as_deref(),
            Some("av01.2.08M.12")
        );
        assert_eq!(av1_codec(&[0x01, 0x00, 0x0c]), None);
        assert_eq!(av1_codec(&[0x81]), None);
    }

    #[test]
    fn aac_lc_and_he_aac_from_esds() {
        // ES descriptor, decoder config (0x40), decoder specific info 0x12 0x10 (AAC LC)
        let mut esds = vec![0, 0, 0, 0];
        esds.extend([0x03, 0x19, 0x00, 0x01, 0x00]);
        esds.extend([0x04, 0x11, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        esds.extend([0x05, 0x02, 0x12, 0x10]);
        assert_eq!(mp4a_codec(&esds), Some(("mp4a.40.2".into(), 2)));
        let at = esds.len() - 2;
        esds[at] = 0x2b; // object type 5 (SBR)
        assert_eq!(mp4a_codec(&esds).map(|c| c.0).as_deref(), Some("mp4a.40.5"));
    }

    #[test]
    fn hevc_main_profile() {
        let mut hvcc = vec![1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        hvcc.extend([0; 10]);
        assert_eq!(
            hevc_codec("hvc1", &hvcc).as_deref(),
            Some("hvc1.1.6.L93.90")
        );
    }

    #[test]
    fn languages() {
        let mut mdhd = vec![0u8; 24];
        // "eng": e=5, n=14, g=7
        let packed: u16 = (5 << 10) | (14 << 5) | 7;
        mdhd[20..22].copy_from_slice(&packed.to_be_bytes());
        assert_eq!(language(&mdhd), "eng");
        mdhd[20..22].copy_from_slice(&[0, 0]);
        assert_eq!(language(&mdhd), "und");
    }
}
