//! Typed views of anonymous shared memory: the counters, the limits'
//! sketches and the player-hint table are each a region of zero-filled
//! pages mapped before the fork, which every process reads and writes
//! through atomics. The one cast from bytes to a Rust type is here.

use std::io;
use std::marker::PhantomData;

use bytemuck::Zeroable;

/// Anonymous shared memory that survives `fork`: every process sees the same bytes.
struct SharedMapping {
    ptr: *mut u8,
    len: usize,
}

impl SharedMapping {
    /// Maps `len` zeroed bytes shared between this process and its future children.
    fn new(len: usize) -> io::Result<SharedMapping> {
        Self::map(len, 0)
    }

    fn map(len: usize, extra_flags: libc::c_int) -> io::Result<SharedMapping> {
        // SAFETY: an anonymous mapping with no address hint; the kernel picks a
        // fresh, page-aligned, zero-filled region of `len` bytes.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | extra_flags,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMapping {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Like `new`, for a large region only partly used: MAP_NORESERVE, so
    /// that untouched pages count against no memory commitment.
    fn new_sparse(len: usize) -> io::Result<SharedMapping> {
        Self::map(len, libc::MAP_NORESERVE)
    }
}

// SAFETY: the mapping is only ever read through `&` references to types
// whose every byte is an atomic or a plain integer (see `SharedRegion`).
unsafe impl Send for SharedMapping {}
unsafe impl Sync for SharedMapping {}

/// A shared mapping holding one `H` (the header; `()` for none) followed by
/// `count` values of `T`, all zero-filled at creation.
///
/// The views are sound because of the bounds: `Zeroable` (derived, which
/// checks every field at compile time) says an all-zero `H` or `T` is a
/// valid value, and `Sync` with no `&mut` ever handed out means every change
/// goes through the types' own atomics, so processes and threads sharing
/// the pages never race on plain memory.
pub struct SharedRegion<H, T> {
    mapping: SharedMapping,
    elements_at: usize,
    count: usize,
    _types: PhantomData<(H, T)>,
}

/// The mapping's alignment: mmap returns page-aligned addresses.
const PAGE_BYTES: usize = 4096;

impl<H: Zeroable + Sync, T: Zeroable + Sync> SharedRegion<H, T> {
    /// A region with every page committed.
    pub fn new(count: usize) -> io::Result<SharedRegion<H, T>> {
        Self::create(count, false)
    }

    /// A large region only partly used: MAP_NORESERVE, so that untouched
    /// pages count against no memory commitment.
    pub fn new_sparse(count: usize) -> io::Result<SharedRegion<H, T>> {
        Self::create(count, true)
    }

    fn create(count: usize, sparse: bool) -> io::Result<SharedRegion<H, T>> {
        let too_aligned = std::mem::align_of::<H>().max(std::mem::align_of::<T>()) > PAGE_BYTES;
        let elements_at = std::mem::size_of::<H>().next_multiple_of(std::mem::align_of::<T>());
        let len = std::mem::size_of::<T>()
            .checked_mul(count)
            .and_then(|elements| elements.checked_add(elements_at))
            .filter(|&len| len > 0 && !too_aligned)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mapping = if sparse {
            SharedMapping::new_sparse(len)?
        } else {
            SharedMapping::new(len)?
        };
        Ok(SharedRegion {
            mapping,
            elements_at,
            count,
            _types: PhantomData,
        })
    }

    /// The header.
    pub fn header(&self) -> &H {
        // SAFETY: the mapping is page-aligned (so aligned for H, checked at
        // creation), at least size_of::<H>() long, zero-filled and shared
        // only through `&` (see the type's comment).
        unsafe { &*self.mapping.ptr.cast::<H>() }
    }

    /// Element `index`, or None past the end.
    pub fn get(&self, index: usize) -> Option<&T> {
        if index >= self.count {
            return None;
        }
        debug_assert!(
            self.elements_at + (index + 1) * std::mem::size_of::<T>() <= self.mapping.len
        );
        // SAFETY: `elements_at` is a multiple of T's alignment from a
        // page-aligned base, and element `index` < count lies inside the
        // mapping's length; zero-filled and shared only through `&`.
        Some(unsafe {
            &*self
                .mapping
                .ptr
                .add(self.elements_at)
                .cast::<T>()
                .add(index)
        })
    }

    /// How many elements follow the header.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

    #[derive(Zeroable)]
    #[repr(C)]
    struct Header {
        count: AtomicU8,
    }

    #[derive(Zeroable)]
    #[repr(C, align(128))]
    struct Slot {
        value: AtomicU64,
    }

    #[test]
    fn elements_follow_the_header_aligned_and_zeroed() {
        let region = SharedRegion::<Header, Slot>::new(3).expect("mapped");
        assert_eq!(region.header().count.load(Ordering::Relaxed), 0);
        let first = region.get(0).expect("first") as *const Slot as usize;
        assert_eq!(first % 128, 0);
        assert!(first > region.header() as *const Header as usize);
        region
            .get(2)
            .expect("last")
            .value
            .store(7, Ordering::Relaxed);
        assert_eq!(
            region.get(2).map(|s| s.value.load(Ordering::Relaxed)),
            Some(7)
        );
        assert!(region.get(3).is_none());
        assert_eq!(region.len(), 3);
    }

    #[test]
    fn a_child_process_writes_what_the_parent_reads() {
        let region = SharedRegion::<(), Slot>::new_sparse(1 << 16).expect("mapped");
        // SAFETY (test only): fork in a test binary; the child only stores
        // and exits.
        match unsafe { libc::fork() } {
            0 => {
                region
                    .get(40_000)
                    .expect("in range")
                    .value
                    .store(42, Ordering::SeqCst);
                unsafe { libc::_exit(0) };
            }
            pid => {
                assert!(pid > 0, "fork failed");
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
                let seen = region.get(40_000).map(|s| s.value.load(Ordering::SeqCst));
                assert_eq!(seen, Some(42));
            }
        }
    }
}
