//! Named columns of the per-worker counters: virtual hosts and folders by
//! name, and the status codes counted one by one.
//!
//! The master names the columns in the shared region when it loads a
//! configuration, before forking the workers that count into them. A name
//! keeps its column for the life of the server, so a reload that changes
//! the hosts starts new columns without losing the totals of hosts that
//! remain; the monitor reads the names to label the sums.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

/// Columns for virtual hosts: 0 counts requests no host took ("unknown"),
/// the last one every host past the table's capacity.
pub const HOST_COLUMNS: usize = 64;
/// The column of requests whose Host matched no virtual host.
pub const UNKNOWN_HOST: usize = 0;
/// Columns for folders; the last one counts folders past the capacity.
pub const FOLDER_COLUMNS: usize = 64;
/// The status codes counted one by one; any other code counts as "other".
pub const STATUS_CODES: [u16; 21] = [
    200, 206, 301, 302, 303, 304, 307, 308, 400, 403, 404, 405, 408, 410, 414, 416, 429, 431, 500,
    501, 503,
];
/// One column per listed code, plus "other".
pub const CODE_COLUMNS: usize = STATUS_CODES.len() + 1;
/// Longest name kept (longer ones are cut).
const NAME_BYTES: usize = 124;

/// How a host pattern is named in the counters: the pattern itself, and
/// `default` for the catch-all `''`.
pub fn host_label(pattern: &str) -> &str {
    if pattern.is_empty() {
        "default"
    } else {
        pattern
    }
}

/// The column of a status code.
pub fn code_column(status: u16) -> usize {
    STATUS_CODES
        .iter()
        .position(|&code| code == status)
        .unwrap_or(STATUS_CODES.len())
}

/// The label of a code column: the code, or "other".
pub fn code_label(column: usize) -> String {
    STATUS_CODES
        .get(column)
        .map_or_else(|| "other".to_string(), |code| code.to_string())
}

/// A column's name in shared memory: written once by the master (bytes first,
/// then the length), read by everyone.
#[derive(bytemuck::Zeroable)]
#[repr(C)]
pub struct ColumnName {
    len: AtomicU32,
    bytes: [AtomicU8; NAME_BYTES],
}

/// The names of one kind of column.
#[derive(bytemuck::Zeroable)]
#[repr(C)]
pub struct Directory<const N: usize> {
    names: [ColumnName; N],
}

impl<const N: usize> Directory<N> {
    /// The name of column `column`, or None when it is not in use.
    pub fn name(&self, column: usize) -> Option<String> {
        let entry = self.names.get(column)?;
        let len = entry.len.load(Ordering::Acquire) as usize;
        if len == 0 {
            return None;
        }
        let bytes: Vec<u8> = entry.bytes[..len.min(NAME_BYTES)]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn set(&self, column: usize, name: &str) {
        let bytes = &name.as_bytes()[..name.len().min(NAME_BYTES)];
        let entry = &self.names[column];
        for (slot, &byte) in entry.bytes.iter().zip(bytes) {
            slot.store(byte, Ordering::Relaxed);
        }
        entry
            .len
            .store(bytes.len().max(1) as u32, Ordering::Release);
    }

    /// The column of `name`: its own if it has one, else the first free one,
    /// else the last ("other"). Only the master calls this.
    pub fn assign(&self, name: &str, first: usize) -> usize {
        let cut = &name[..floor_char_boundary(name, NAME_BYTES)];
        let overflow = N - 1;
        for column in first..overflow {
            match self.name(column) {
                Some(existing) if existing == cut => return column,
                Some(_) => {}
                None => {
                    self.set(column, cut);
                    return column;
                }
            }
        }
        if self.name(overflow).is_none() {
            self.set(overflow, "(other)");
        }
        overflow
    }

    /// Names the columns that need one before any configuration is loaded.
    pub fn reserve(&self, column: usize, name: &str) {
        if self.name(column).is_none() {
            self.set(column, name);
        }
    }
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A host or folder name as it appears in `name = value` lines: each run of
/// characters outside `[A-Za-z0-9.+-]` becomes one `_` (the original's rule;
/// hyphens are kept and counted like any other character).
pub fn clean_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_like_the_original_but_keep_hyphens() {
        assert_eq!(clean_name("my-site.com"), "my-site.com");
        assert_eq!(
            clean_name(r"^video\.example\.com$"),
            "_video_.example_.com_"
        );
        assert_eq!(clean_name("a  b"), "a_b");
    }

    #[test]
    fn codes_have_columns_and_others_share_one() {
        assert_eq!(code_column(200), 0);
        assert_eq!(code_column(503), STATUS_CODES.len() - 1);
        assert_eq!(code_column(418), STATUS_CODES.len());
        assert_eq!(code_label(code_column(418)), "other");
        assert_eq!(code_label(code_column(404)), "404");
    }
}
