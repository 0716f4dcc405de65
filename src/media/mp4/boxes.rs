//! ISO BMFF boxes: headers with 32- and 64-bit sizes, the top-level scan of a
//! file and the box tree of `moov`.
//!
//! Every size is checked against the box's parent, so a hostile size can
//! neither loop nor read past the data.

use crate::media::window::Window;
use crate::media::{MediaError, ReadAt, broken};

/// Largest `moov` loaded into memory.
pub const MOOV_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
/// Most top-level boxes scanned: a moof and an mdat for each fragment kept,
/// and room for the rest.
const TOP_LEVEL_LIMIT: usize = 2 * FRAGMENTS_LIMIT + 10_000;
/// Most fragments indexed: one a frame for 23 hours at 60 frames a second
/// (16 bytes each while the file is indexed).
pub const FRAGMENTS_LIMIT: usize = 5_000_000;
/// Most bytes of moof boxes held while a fragmented file is indexed (the
/// moov they become is held under the same limit).
pub const MOOFS_LIMIT_BYTES: u64 = MOOV_LIMIT_BYTES;
/// Read-ahead of the top-level scan: a fragment's moof and the next mdat's
/// header in one read.
const SCAN_AHEAD_BYTES: usize = 64 * 1024;
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

/// The top-level boxes a seek needs.
pub struct TopLevel {
    pub ftyp: Option<Vec<u8>>,
    /// The whole moov box and its file offset.
    pub moov: Vec<u8>,
    pub moov_offset: u64,
    /// The moof boxes after the moov (offset, size), in file order, and
    /// their bytes one after the other: read in the same pass as the
    /// top-level headers, so a fragmented film is read once.
    pub fragments: Vec<(u64, u64)>,
    pub moofs: Vec<u8>,
    /// Where the whole boxes end, when the file goes on with a box that
    /// runs past its end or is not a box (a recording cut short).
    pub cut_at: Option<u64>,
    /// Where the fragments kept end, when there are more than
    /// [`FRAGMENTS_LIMIT`] or their moofs take more than [`MOOFS_LIMIT_BYTES`].
    pub fragments_capped_at: Option<u64>,
}

/// Scans the top level of a file (moov may be anywhere), reading ahead so
/// that a fragmented file's many small boxes cost few system calls.
pub fn scan_top_level<R: ReadAt + ?Sized>(source: &R) -> Result<TopLevel, MediaError> {
    let size = source.size();
    let mut window = Window::new(source, SCAN_AHEAD_BYTES);
    let mut offset = 0;
    let mut ftyp = None;
    let mut moov = None;
    let mut fragments = Vec::new();
    let mut moofs = Vec::new();
    let mut cut_at = None;
    let mut fragments_capped_at = None;
    let mut count = 0;
    while offset < size {
        count += 1;
        if count > TOP_LEVEL_LIMIT {
            return Err(broken(format!(
                "more than {TOP_LEVEL_LIMIT} top-level boxes"
            )));
        }
        let raw = window.get(offset, 16)?;
        if raw.len() < 8 {
            // A few stray bytes after the last box: tolerated, as players do.
            break;
        }
        let header = match parse_header(raw, 0, size - offset, offset) {
            Ok(header) => BoxHeader { offset, ..header },
            // Once the moov is read, what follows a damaged box is left out.
            Err(_) if moov.is_some() => {
                cut_at = Some(offset);
                break;
            }
            Err(e) => return Err(e),
        };
        match &header.kind {
            b"ftyp" if ftyp.is_none() && header.size <= 4096 => {
                ftyp = Some(source.read_exact_at(offset, header.size as usize)?);
            }
            b"moov" if moov.is_none() => {
                if header.size > MOOV_LIMIT_BYTES {
                    return Err(broken(format!(
                        "moov at offset {offset} is {} bytes, over the limit",
                        header.size
                    )));
                }
                moov = Some((source.read_exact_at(offset, header.size as usize)?, offset));
            }
            // A moof is read whole: one claiming more than a moov may is
            // damage, and ends the file there. (Fragments before the moov
            // describe tracks not yet declared: ignored, as players do.)
            b"moof" if moov.is_some() && header.size > MOOV_LIMIT_BYTES => {
                cut_at = Some(offset);
                break;
            }
            b"moof" if moov.is_some() && fragments_capped_at.is_none() => {
                if fragments.len() >= FRAGMENTS_LIMIT
                    || moofs.len() as u64 + header.size > MOOFS_LIMIT_BYTES
                {
                    fragments_capped_at = Some(offset);
                } else {
                    let moof = window.get(offset, header.size as usize)?;
                    if moof.len() as u64 != header.size {
                        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                    }
                    moofs.extend_from_slice(moof);
                    fragments.push((offset, header.size));
                }
            }
            _ => {}
        }
        offset = header.end();
    }
    let Some((moov, moov_offset)) = moov else {
        return Err(broken("no moov box in the file"));
    };
    Ok(TopLevel {
        ftyp,
        moov,
        moov_offset,
        fragments,
        moofs,
        cut_at,
        fragments_capped_at,
    })
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
mod tests {
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

    #[test]
    fn top_level_scan_finds_moov_at_the_end_fragments_and_a_cut() {
        let mut file = boxed(b"ftyp", b"isom\0\0\0\0");
        file.extend(boxed(b"mdat", &[1, 2, 3]));
        file.extend(boxed(b"moov", &boxed(b"mvhd", &[0; 100])));
        let top = scan_top_level(file.as_slice()).expect("ok");
        assert_eq!(top.moov_offset, 27);
        assert!(top.fragments.is_empty());
        assert_eq!(top.ftyp.expect("ftyp").len(), 16);
        let moof_at = file.len() as u64;
        file.extend(boxed(b"moof", &[]));
        let top = scan_top_level(file.as_slice()).expect("ok");
        assert_eq!(top.fragments, vec![(moof_at, 8)]);
        assert_eq!(top.cut_at, None);
        // A last box that runs past the end: the boxes before it are kept.
        let cut_at = file.len() as u64;
        file.extend(&boxed(b"mdat", &[0; 100])[..50]);
        let top = scan_top_level(file.as_slice()).expect("ok");
        assert_eq!((top.fragments.len(), top.cut_at), (1, Some(cut_at)));
        assert!(
            scan_top_level(&boxed(b"mdat", &[0; 9])[..]).is_err(),
            "no moov"
        );
    }

    /// A file whose bytes past `head` read as zeros, up to `size`: a huge
    /// file that costs nothing, and panics if the scan reads deep into it.
    struct Sparse {
        head: Vec<u8>,
        size: u64,
    }

    impl ReadAt for Sparse {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            assert!(
                offset < 1 << 20,
                "read at {offset}: the scan read a moof body"
            );
            let n = buf.len().min(self.size.saturating_sub(offset) as usize);
            for (i, byte) in buf[..n].iter_mut().enumerate() {
                *byte = self.head.get(offset as usize + i).copied().unwrap_or(0);
            }
            Ok(n)
        }
        fn size(&self) -> u64 {
            self.size
        }
    }

    #[test]
    fn a_moof_claiming_more_than_a_moov_may_ends_the_file_unread() {
        let mut head = boxed(b"moov", &boxed(b"mvhd", &[0; 100]));
        let moof_at = head.len() as u64;
        let claimed = MOOV_LIMIT_BYTES + 8;
        head.extend_from_slice(&[0, 0, 0, 1]);
        head.extend_from_slice(b"moof");
        head.extend_from_slice(&claimed.to_be_bytes());
        let file = Sparse {
            head,
            size: moof_at + claimed + 1000,
        };
        let top = scan_top_level(&file).expect("ok");
        assert_eq!((top.fragments.len(), top.cut_at), (0, Some(moof_at)));
    }
}
