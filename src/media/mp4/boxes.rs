//! ISO BMFF boxes: headers with 32- and 64-bit sizes and the box tree of
//! `moov` (the top level of a file is scanned in top_level.rs).
//!
//! Every size is checked against the box's parent, so a hostile size can
//! neither loop nor read past the data.

use crate::media::{MediaError, broken};

/// Deepest box nesting parsed.
const DEPTH_LIMIT: usize = 16;

pub type FourCc = [u8; 4];

/// Readable four-character code for messages.
pub fn name(kind: FourCc) -> String {
    kind.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// A box header: where the box is and how big.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: FourCc,
    /// Offset of the box's first byte.
    pub offset: u64,
    /// 8, or 16 with a 64-bit size.
    pub header_len: u64,
    /// Whole box, header included.
    pub size: u64,
}

impl BoxHeader {
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }

    pub fn payload_offset(&self) -> u64 {
        self.offset + self.header_len
    }
}

/// Parses the header at `offset` from its first 16 (or fewer) bytes; the box
/// must end by `limit`. `base` is added to offsets in messages.
pub fn parse_header(
    bytes: &[u8],
    offset: u64,
    limit: u64,
    base: u64,
) -> Result<BoxHeader, MediaError> {
    let at = base + offset;
    if bytes.len() < 8 || limit - offset < 8 {
        return Err(broken(format!(
            "box header at offset {at}: only {} bytes left",
            limit - offset
        )));
    }
    let size32 = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let kind = [bytes[4], bytes[5], bytes[6], bytes[7]];
    let (header_len, size) = match size32 {
        0 => (8, limit - offset),
        1 => {
            if bytes.len() < 16 || limit - offset < 16 {
                return Err(broken(format!(
                    "box '{}' at offset {at}: truncated 64-bit size",
                    name(kind)
                )));
            }
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[8..16]);
            (16, u64::from_be_bytes(raw))
        }
        n => (8, u64::from(n)),
    };
    if size < header_len {
        return Err(broken(format!(
            "box '{}' at offset {at}: size {size} is smaller than its header",
            name(kind)
        )));
    }
    if size > limit - offset {
        return Err(broken(format!(
            "box '{}' at offset {at}: size {size} runs past the end of its container (at offset {})",
            name(kind),
            base + limit
        )));
    }
    Ok(BoxHeader {
        kind,
        offset,
        header_len,
        size,
    })
}

/// The moov box's bytes, shared by the index and each of its tracks: a
/// track reads its per-sample sizes where the stsz box keeps them instead of
/// holding a decoded copy (4 bytes a sample, a megabyte for an hour's film,
/// and the fresh memory a first index pays for page by page).
#[derive(Clone, Default)]
pub struct MoovBytes(std::rc::Rc<Vec<u8>>);

impl MoovBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        MoovBytes(std::rc::Rc::new(bytes))
    }

    /// Memory held, for the cache's budget.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl std::ops::Deref for MoovBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for MoovBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MoovBytes({} bytes)", self.0.len())
    }
}

/// A box of the moov tree. Offsets are relative to the start of the moov box.
#[derive(Clone, Debug)]
pub struct Node {
    pub header: BoxHeader,
    /// Children, for the container boxes a seek rewrites.
    pub children: Vec<Node>,
}

impl Node {
    pub fn kind(&self) -> FourCc {
        self.header.kind
    }

    pub fn child(&self, kind: &FourCc) -> Option<&Node> {
        self.children.iter().find(|c| &c.header.kind == kind)
    }

    /// The payload bytes of this box within `moov`.
    pub fn payload<'a>(&self, moov: &'a [u8]) -> &'a [u8] {
        &moov[self.header.payload_offset() as usize..self.header.end() as usize]
    }

    /// The whole box within `moov`.
    pub fn bytes<'a>(&self, moov: &'a [u8]) -> &'a [u8] {
        &moov[self.header.offset as usize..self.header.end() as usize]
    }
}

fn is_container(kind: &FourCc) -> bool {
    matches!(
        kind,
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts"
    )
}

/// Parses the box tree of a moov held in memory. `file_offset` is where it
/// sits in the file, for messages.
pub fn parse_tree(moov: &[u8], file_offset: u64) -> Result<Node, MediaError> {
    let header = parse_header(moov, 0, moov.len() as u64, file_offset)?;
    parse_node(moov, header, file_offset, 0)
}

fn parse_node(moov: &[u8], header: BoxHeader, base: u64, depth: usize) -> Result<Node, MediaError> {
    let mut children = Vec::new();
    if is_container(&header.kind) {
        if depth > DEPTH_LIMIT {
            return Err(broken(format!(
                "boxes nested too deep at offset {}",
                base + header.offset
            )));
        }
        let mut offset = header.payload_offset();
        while offset < header.end() {
            if header.end() - offset < 8 {
                break; // padding at the end of a container
            }
            let end = (offset as usize + 16).min(moov.len());
            let child = parse_header(&moov[offset as usize..end], offset, header.end(), base)?;
            let child = BoxHeader { offset, ..child };
            offset = child.end();
            children.push(parse_node(moov, child, base, depth + 1)?);
        }
    }
    Ok(Node { header, children })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn headers_of_each_size_form() {
        let small = boxed(b"free", &[0; 4]);
        assert_eq!(parse_header(&small, 0, 12, 0).expect("ok").size, 12);
        let mut large = vec![0, 0, 0, 1];
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&20u64.to_be_bytes());
        large.extend_from_slice(&[0; 4]);
        let header = parse_header(&large, 0, 20, 0).expect("ok");
        assert_eq!((header.header_len, header.size), (16, 20));
        let to_end = [0, 0, 0, 0, b'm', b'd', b'a', b't'];
        assert_eq!(parse_header(&to_end, 0, 100, 0).expect("ok").size, 100);
    }

    #[test]
    fn hostile_sizes_are_errors() {
        let tiny = [0, 0, 0, 4, b'f', b'r', b'e', b'e'];
        assert!(parse_header(&tiny, 0, 100, 0).is_err());
        let huge = [0, 0, 1, 0, b'f', b'r', b'e', b'e'];
        let error = parse_header(&huge, 0, 100, 1000).expect_err("too big");
        assert!(
            error.to_string().contains("box 'free' at offset 1000"),
            "{error}"
        );
    }
}
