//! Writing boxes into a buffer: a box is opened (its size left blank),
//! filled, then closed (its size written), so nested boxes need no sizes
//! worked out in advance.

/// Starts a box of `kind` in `out`; [`close`] writes its size.
pub fn open(out: &mut Vec<u8>, kind: &[u8; 4]) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    at
}

/// Ends the box [`open`] started at `at` (a 32-bit size: the boxes written
/// this way are headers and tables, never media).
pub fn close(out: &mut [u8], at: usize) {
    let size = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

/// Starts a full box (version and flags).
pub fn open_full(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32) -> usize {
    let at = open(out, kind);
    out.extend_from_slice(&(u32::from(version) << 24 | (flags & 0x00ff_ffff)).to_be_bytes());
    at
}

pub fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}
