//! The top level of an MP4 file: where its ftyp, moov and moof boxes lie,
//! read in one pass that skips every mdat payload. A fragmented file's
//! moofs are kept for the defragmenter, and on a file not in memory they
//! are asked of the disk all at once, as its sidx or mfra names them
//! (fragment_map.rs).

use super::boxes::{BoxHeader, parse_header};
use super::fragment_map;
use super::limits::IndexLimits;
use crate::media::window::Window;
use crate::media::{MediaError, ReadAt, broken};

/// Read-ahead of the top-level scan: a fragment's moof and the next mdat's
/// header in one read.
const SCAN_AHEAD_BYTES: usize = 64 * 1024;

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
    /// Where the fragments kept end, when there are more than the limits
    /// allow or their moofs take more bytes than a moov may.
    pub fragments_capped_at: Option<u64>,
}

/// Scans the top level of a file (moov may be anywhere), reading ahead so
/// that a fragmented file's many small boxes cost few system calls.
pub fn scan_top_level<R: ReadAt + ?Sized>(source: &R) -> Result<TopLevel, MediaError> {
    scan_top_level_within(source, &IndexLimits::DEFAULT)
}

/// [`scan_top_level`] under `limits`.
pub fn scan_top_level_within<R: ReadAt + ?Sized>(
    source: &R,
    limits: &IndexLimits,
) -> Result<TopLevel, MediaError> {
    let size = source.size();
    let top_level_boxes = limits.top_level_boxes();
    let mut window = Window::new(source, SCAN_AHEAD_BYTES);
    let mut offset = 0;
    let mut ftyp = None;
    let mut moov = None;
    let mut fragments = Vec::new();
    let mut moofs = Vec::new();
    let mut cut_at = None;
    let mut fragments_capped_at = None;
    let mut count = 0;
    // The moofs a sidx names, and whether the reading ahead of the moofs
    // (fragment_map.rs) has been decided, at the first moof.
    let mut mapped = Vec::new();
    let mut looked_ahead = false;
    while offset < size {
        count += 1;
        if count > top_level_boxes {
            return Err(broken(format!(
                "more than {top_level_boxes} top-level boxes"
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
                if header.size > limits.moov_bytes {
                    return Err(broken(format!(
                        "moov at offset {offset} is {} bytes, over the limit of {} MB (options.cache raises it)",
                        header.size,
                        limits.moov_bytes >> 20
                    )));
                }
                moov = Some((source.read_exact_at(offset, header.size as usize)?, offset));
            }
            b"sidx"
                if moov.is_some()
                    && !looked_ahead
                    && fragment_map::is_readable_map(header.size) =>
            {
                let sidx = window.get(offset, header.size as usize)?;
                if let Some(payload) = sidx.get(header.header_len as usize..) {
                    mapped.extend(
                        fragment_map::sidx_starts(payload, header.end()).unwrap_or_default(),
                    );
                }
            }
            // A moof is read whole: one claiming more than a moov may is
            // damage, and ends the file there. (Fragments before the moov
            // describe tracks not yet declared: ignored, as players do.)
            b"moof" if moov.is_some() && header.size > limits.moov_bytes => {
                cut_at = Some(offset);
                break;
            }
            b"moof" if moov.is_some() && fragments_capped_at.is_none() => {
                if !looked_ahead {
                    looked_ahead = true;
                    read_moofs_ahead(source, std::mem::take(&mut mapped), offset);
                }
                if fragments.len() >= limits.fragments
                    || moofs.len() as u64 + header.size > limits.moov_bytes
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

/// On a file not in memory, asks for every moof from `first_moof` on at
/// once, as the file's sidx (`mapped`) or else its mfra names them, so the
/// scan that follows waits on the disk once rather than once a fragment.
fn read_moofs_ahead<R: ReadAt + ?Sized>(source: &R, mapped: Vec<u64>, first_moof: u64) {
    if !fragment_map::looks_cold(source, first_moof) {
        return;
    }
    let starts = if mapped.is_empty() {
        fragment_map::mfra_of(source).unwrap_or_default()
    } else {
        mapped
    };
    fragment_map::read_ahead(source, starts, first_moof);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::mp4::boxes::tests::boxed;

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
        let claimed = IndexLimits::DEFAULT.moov_bytes + 8;
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
