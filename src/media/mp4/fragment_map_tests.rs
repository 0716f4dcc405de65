use std::cell::RefCell;

use super::*;
use crate::media::mp4::boxes::tests::boxed;
use crate::media::mp4::top_level::scan_top_level;

/// A sidx payload: version, first_offset and (is an index, size) references.
fn sidx(version: u8, first_offset: u64, references: &[(bool, u32)]) -> Vec<u8> {
    let mut p = vec![version, 0, 0, 0];
    p.extend_from_slice(&1u32.to_be_bytes()); // reference_ID
    p.extend_from_slice(&90_000u32.to_be_bytes());
    if version == 0 {
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&(first_offset as u32).to_be_bytes());
    } else {
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&first_offset.to_be_bytes());
    }
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&(references.len() as u16).to_be_bytes());
    for &(index, size) in references {
        p.extend_from_slice(&(u32::from(index) << 31 | size).to_be_bytes());
        p.extend_from_slice(&180_000u32.to_be_bytes());
        p.extend_from_slice(&0x9000_0000u32.to_be_bytes());
    }
    p
}

#[test]
fn a_sidx_names_its_segments_from_the_end_of_the_box() {
    let payload = sidx(0, 0, &[(false, 1000), (false, 2000), (false, 500)]);
    assert_eq!(sidx_starts(&payload, 800).expect("v0"), [800, 1800, 3800]);
    let payload = sidx(1, 5 << 32, &[(false, 10), (true, 20), (false, 30)]);
    let at = 100 + (5u64 << 32);
    // The reference to a further sidx is stepped over, not named.
    assert_eq!(sidx_starts(&payload, 100).expect("v1"), [at, at + 30]);
}

#[test]
fn a_sidx_cut_short_is_an_error_not_a_guess() {
    let payload = sidx(0, 0, &[(false, 1000), (false, 2000)]);
    assert!(sidx_starts(&payload[..payload.len() - 1], 0).is_err());
    assert!(sidx_starts(&payload[..10], 0).is_err());
    assert!(sidx_starts(&[], 0).is_err());
}

/// A tfra payload with `entries` moof offsets and number fields of
/// `numbers` bytes each (1 to 4).
fn tfra(version: u8, numbers: u32, moofs: &[u64]) -> Vec<u8> {
    let mut p = vec![version, 0, 0, 0];
    p.extend_from_slice(&1u32.to_be_bytes());
    let code = numbers - 1;
    p.extend_from_slice(&(code << 4 | code << 2 | code).to_be_bytes());
    p.extend_from_slice(&(moofs.len() as u32).to_be_bytes());
    for (i, &moof) in moofs.iter().enumerate() {
        if version == 1 {
            p.extend_from_slice(&(i as u64 * 1000).to_be_bytes());
            p.extend_from_slice(&moof.to_be_bytes());
        } else {
            p.extend_from_slice(&(i as u32 * 1000).to_be_bytes());
            p.extend_from_slice(&(moof as u32).to_be_bytes());
        }
        p.extend(std::iter::repeat_n(1u8, 3 * numbers as usize));
    }
    p
}

#[test]
fn an_mfra_names_the_moofs_of_every_tfra() {
    let mut mfra = boxed(b"tfra", &tfra(1, 1, &[100, 5 << 33]));
    mfra.extend(boxed(b"tfra", &tfra(0, 4, &[300, 400, 500])));
    mfra.extend(boxed(b"mfro", &[0; 8]));
    assert_eq!(
        mfra_starts(&mfra).expect("mfra"),
        [100, 5 << 33, 300, 400, 500]
    );
    let mut claims_more = boxed(b"tfra", &tfra(0, 2, &[1, 2]));
    claims_more[8 + 15] = 3; // three entries claimed, two held
    assert!(mfra_starts(&claims_more).is_err());
}

/// A file that records what is asked of it, in order: reads (false) and
/// read-ahead hints (true), with their offsets and lengths.
struct Recorded {
    bytes: Vec<u8>,
    cached: bool,
    asked: RefCell<Vec<(bool, u64, u64)>>,
}

impl Recorded {
    fn new(bytes: Vec<u8>, cached: bool) -> Self {
        Recorded {
            bytes,
            cached,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn ahead(&self) -> Vec<(u64, u64)> {
        let asked = self.asked.borrow();
        asked.iter().filter(|a| a.0).map(|a| (a.1, a.2)).collect()
    }

    /// Where the first hint and the first read in `[from, to)` came.
    fn first_hint_and_read_in(&self, from: u64, to: u64) -> (Option<usize>, Option<usize>) {
        let asked = self.asked.borrow();
        (
            asked.iter().position(|a| a.0),
            asked.iter().position(|a| !a.0 && a.1 >= from && a.1 < to),
        )
    }
}

impl ReadAt for Recorded {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.asked
            .borrow_mut()
            .push((false, offset, buf.len() as u64));
        self.bytes.as_slice().read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn is_cached(&self, _offset: u64) -> bool {
        self.cached
    }
    fn read_ahead(&self, offset: u64, len: u64) {
        self.asked.borrow_mut().push((true, offset, len));
    }
}

/// Whether every moof in `moofs` lies at the start of a range read ahead.
fn covered(moofs: &[u64], ahead: &[(u64, u64)], size: u64) -> bool {
    moofs.iter().all(|&moof| {
        ahead.iter().any(|&(at, len)| {
            at <= moof && (moof + MOOF_AHEAD_BYTES <= at + len || at + len == size)
        })
    })
}

/// The committed film fragmented: one moof a keyframe, an mfra at the end.
fn sample_frag() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/media/sample_frag.mp4");
    std::fs::read(path).expect("the committed fragmented film")
}

/// A fragmented file's top level: ftyp, an empty moov, `map` (a sidx, or
/// nothing), then three segments (moof + mdat) of 100 KB, and the offsets
/// of their moofs.
fn segmented(map: &[u8]) -> (Vec<u8>, Vec<u64>) {
    let mut file = boxed(b"ftyp", b"isom");
    file.extend(boxed(b"moov", &[]));
    file.extend_from_slice(map);
    let mut moofs = Vec::new();
    for _ in 0..3 {
        moofs.push(file.len() as u64);
        file.extend(boxed(b"moof", &[0; 92]));
        file.extend(boxed(b"mdat", &vec![0; SEGMENT_BYTES as usize - 108]));
    }
    (file, moofs)
}

const SEGMENT_BYTES: u32 = 100 * 1024;

/// Checks that every moof was read ahead, before the scan read any byte
/// past the first segment (other than the map's own bytes at `map_at`).
fn check_read_ahead(file: &Recorded, moofs: &[u64], map_at: u64) {
    let ahead = file.ahead();
    assert!(
        covered(moofs, &ahead, file.size()),
        "{moofs:?} not all in {ahead:?}"
    );
    let (hint, read) = file.first_hint_and_read_in(moofs[1], map_at);
    assert!(hint.expect("a hint") < read.expect("a read"));
}

#[test]
fn a_cold_file_has_every_moof_its_mfra_names_read_ahead_at_once() {
    let (mut bytes, moofs) = segmented(&[]);
    let mfra_at = bytes.len() as u64;
    let mut mfra = boxed(b"tfra", &tfra(1, 1, &moofs));
    let mfra_len = mfra.len() as u32 + 8 + 16;
    mfra.extend(boxed(
        b"mfro",
        &[&[0u8; 4][..], &mfra_len.to_be_bytes()].concat(),
    ));
    bytes.extend(boxed(b"mfra", &mfra));
    let file = Recorded::new(bytes, false);
    let top = scan_top_level(&file).expect("scan");
    assert_eq!(top.fragments.iter().map(|f| f.0).collect::<Vec<_>>(), moofs);
    check_read_ahead(&file, &moofs, mfra_at);
}

#[test]
fn a_cold_file_with_a_sidx_has_the_segments_it_names_read_ahead() {
    // No mfra: the sidx is the only map.
    let sidx_box = boxed(b"sidx", &sidx(0, 0, &[(false, SEGMENT_BYTES); 3]));
    let (bytes, moofs) = segmented(&sidx_box);
    let file = Recorded::new(bytes, false);
    let top = scan_top_level(&file).expect("scan");
    assert_eq!(top.fragments.iter().map(|f| f.0).collect::<Vec<_>>(), moofs);
    check_read_ahead(&file, &moofs, file.size());
    // The end of the file was not read for an mfra: the sidx sufficed.
    let size = file.size();
    assert!(!file.asked.borrow().iter().any(|a| !a.0 && a.1 == size - 16));
}

#[test]
fn the_committed_fragmented_film_has_its_moofs_read_ahead_when_cold() {
    let file = Recorded::new(sample_frag(), false);
    let top = scan_top_level(&file).expect("scan");
    let moofs: Vec<u64> = top.fragments.iter().map(|f| f.0).collect();
    assert_eq!(moofs.len(), 4);
    let ahead = file.ahead();
    assert!(
        covered(&moofs, &ahead, file.size()),
        "{moofs:?} not all in {ahead:?}"
    );
}

#[test]
fn a_file_in_memory_is_scanned_without_its_map() {
    let file = Recorded::new(sample_frag(), true);
    let top = scan_top_level(&file).expect("scan");
    assert_eq!(top.fragments.len(), 4);
    assert!(file.ahead().is_empty());
    // Its mfra is never read.
    let size = file.size();
    assert!(!file.asked.borrow().iter().any(|a| !a.0 && a.1 == size - 16));
}

#[test]
fn a_map_that_lies_changes_nothing_the_scan_finds() {
    let honest = scan_top_level(&Recorded::new(sample_frag(), false)).expect("scan");
    // Point the mfra's entries at nonsense: past the end, into the moov.
    let mut bytes = sample_frag();
    let mfra_at =
        bytes.len() - u32::from_be_bytes(bytes[bytes.len() - 4..].try_into().expect("4")) as usize;
    let mfro_at = bytes.len() - 16;
    for byte in &mut bytes[mfra_at + 40..mfro_at] {
        *byte = 0xff;
    }
    let lying = Recorded::new(bytes, false);
    let top = scan_top_level(&lying).expect("scan");
    assert_eq!(top.fragments, honest.fragments);
    assert_eq!(top.moofs, honest.moofs);
    for (at, len) in lying.ahead() {
        assert!(at + len <= lying.size());
    }
}

#[test]
fn nearby_fragments_are_asked_for_as_one_range() {
    let starts = [1_000, 5_000, 100_000, 100_100];
    assert_eq!(
        ranges(&starts, 1 << 20),
        [
            (1_000, 4_000 + MOOF_AHEAD_BYTES),
            (100_000, 100 + MOOF_AHEAD_BYTES)
        ]
    );
    // Never past the end of the file.
    assert_eq!(ranges(&[10, 20], 30), [(10, 20)]);
}
