//! Thin safe wrappers over the system calls the server needs and `std` does not offer.
//!
//! Layer: the ground floor. Imports nothing of the crate; every module may
//! use it. The only module with `unsafe` code (`tests/layering.rs` checks).
//!
//! This is the only module with `unsafe` code. Each block says why it holds.

pub mod ktls;
pub mod page_cache;
mod shared;
pub mod signals;
pub mod socket;

pub use shared::SharedRegion;

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Turns a `-1` return into the thread's `errno` as an `io::Error`.
fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// What `fork` returned in the calling process.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// Forks the process. The child must not return into code that expects other
/// threads: the server forks before it starts any.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the master is single-threaded when it forks, so the child gets a
    // consistent copy of every lock and allocator state.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Asks the kernel to send `signal` to this process when its parent, the
/// process `parent`, dies, so a worker never outlives a master killed with
/// SIGKILL. Call it after any change of user or group: the kernel clears
/// the request on a change of credentials. If the parent died before the
/// request was made, `signal` is sent at once.
pub fn die_with_parent(signal: libc::c_int, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    check(
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) }
            as libc::c_long,
    )?;
    // The parent may have died between fork and prctl: then nobody will
    // send the signal, and this process was handed to another parent.
    if !parent_is(parent) {
        // SAFETY: raise takes a signal number only.
        check(unsafe { libc::raise(signal) } as libc::c_long)?;
    }
    Ok(())
}

/// Whether this process's parent is still `parent`.
pub fn parent_is(parent: libc::pid_t) -> bool {
    // SAFETY: getppid cannot fail and touches no memory.
    unsafe { libc::getppid() == parent }
}

/// Sends up to `count` bytes of `file` starting at `*offset` to `socket`,
/// advancing `*offset` by what was sent.
pub fn sendfile(socket: RawFd, file: RawFd, offset: &mut u64, count: usize) -> io::Result<usize> {
    let mut off = *offset as libc::off_t;
    // SAFETY: both descriptors are open for the duration of the call and `off`
    // is a valid, exclusively borrowed off_t.
    let sent = check(unsafe { libc::sendfile(socket, file, &mut off, count) } as libc::c_long)?;
    *offset = off as u64;
    Ok(sent as usize)
}

/// `send(2)` without SIGPIPE; with `more`, tells TCP that more data follows
/// (MSG_MORE), so a response head and the first body bytes share a packet.
pub fn send(socket: RawFd, buf: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    // SAFETY: `buf` is a valid slice for the whole call.
    let sent = check(
        unsafe { libc::send(socket, buf.as_ptr().cast(), buf.len(), flags) } as libc::c_long,
    )?;
    Ok(sent as usize)
}

/// The names in the directory `relative` beneath `dir` (opened as
/// `open_beneath` opens files, so it cannot leave `dir`), without `.` and
/// `..`.
pub fn list_beneath(dir: &File, dir_path: &Path, relative: &Path) -> io::Result<Vec<Vec<u8>>> {
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let opened = open_beneath(dir, dir_path, relative)?;
    let mut listing = nix::dir::Dir::from_fd(opened.into_raw_fd()).map_err(io::Error::from)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(io::Error::from)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Opens `relative` for reading beneath the directory `dir`, refusing any path
/// that would leave it: `..` components, absolute symlinks and symlinks that
/// point outside. Falls back to a canonicalising check on kernels without
/// openat2 (before Linux 5.6).
pub fn open_beneath(dir: &File, dir_path: &Path, relative: &Path) -> io::Result<File> {
    let c_relative = CString::new(relative.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut how: libc::open_how = unsafe_zeroed_open_how();
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `how` is a fully initialised open_how, its size is passed, and the
    // path is a valid NUL-terminated string.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c_relative.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor to us alone.
        return Ok(unsafe { File::from_raw_fd(fd as RawFd) });
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let resolved = dir_path.join(relative).canonicalize()?;
    if !resolved.starts_with(dir_path) {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblocking()
        .open(resolved)
}

fn unsafe_zeroed_open_how() -> libc::open_how {
    // SAFETY: open_how is a plain struct of integers, for which all-zero is valid
    // (and required for the fields we do not set).
    unsafe { std::mem::zeroed() }
}

trait NonBlockingOpen {
    fn custom_flags_nonblocking(&mut self) -> &mut Self;
}

impl NonBlockingOpen for std::fs::OpenOptions {
    fn custom_flags_nonblocking(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
    }
}

/// What identifies a file's current content: same device, inode, size and
/// modification time means the same bytes, for every cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    /// Modification time: seconds and nanoseconds since the epoch.
    pub modified: i64,
    pub modified_nanos: i64,
    pub kind: FileKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Regular,
    Directory,
    Other,
}

fn identity_from(st: &libc::stat) -> FileIdentity {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::Regular,
        libc::S_IFDIR => FileKind::Directory,
        _ => FileKind::Other,
    };
    FileIdentity {
        device: st.st_dev,
        inode: st.st_ino,
        size: st.st_size as u64,
        modified: st.st_mtime,
        modified_nanos: st.st_mtime_nsec,
        kind,
    }
}

/// `fstat` of an open file.
pub fn identity_of(file: &File) -> io::Result<FileIdentity> {
    // SAFETY: all-zero is a valid stat to fill in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open and `st` is valid for writing.
    check(unsafe { libc::fstat(file.as_raw_fd(), &mut st) } as libc::c_long)?;
    Ok(identity_from(&st))
}

/// `stat` of `relative` under the directory `dir`, following symlinks. Only
/// used to check that a path still names a file opened safely before.
pub fn identity_at(dir: &File, relative: &[u8]) -> io::Result<FileIdentity> {
    let c_relative =
        CString::new(relative).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all-zero is a valid stat to fill in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, NUL-terminated path, writable stat.
    check(
        unsafe { libc::fstatat(dir.as_raw_fd(), c_relative.as_ptr(), &mut st, 0) } as libc::c_long,
    )?;
    Ok(identity_from(&st))
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill in.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } as libc::c_long)?;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above; the soft limit never exceeds the hard one.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } as libc::c_long)?;
    }
    Ok(limit.rlim_cur)
}

/// The real user id, to decide whether privileges can and must be dropped.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A system account to run as after binding.
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Looks an account up in the password database.
pub fn find_account(name: &str) -> io::Result<Option<Account>> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(Some(Account {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })),
        Ok(None) => Ok(None),
        Err(errno) => Err(io::Error::from_raw_os_error(errno as i32)),
    }
}

/// Switches this process to `account` for good: supplementary groups, group, then user.
pub fn switch_to(account: &Account) -> io::Result<()> {
    let name = CString::new(account.name.as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: plain system calls on integers and a valid C string; the order
    // (groups, gid, uid) is the one that leaves no privilege behind.
    unsafe {
        check(libc::initgroups(name.as_ptr(), account.gid) as libc::c_long)?;
        check(libc::setgid(account.gid) as libc::c_long)?;
        check(libc::setuid(account.uid) as libc::c_long)?;
    }
    Ok(())
}

/// CLOCK_MONOTONIC in microseconds: one clock for every process (unlike
/// `Instant`, whose values cannot be shared through memory).
pub fn monotonic_micros() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively
    // borrowed `now`; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000
}

/// Current wall-clock time as seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Maps a MaxMind DB file read-only for `maxminddb`.
pub fn map_maxmind_database(
    path: &Path,
) -> Result<maxminddb::Reader<maxminddb::Mmap>, maxminddb::MaxMindDbError> {
    // SAFETY: the mapping is read-only and private to the reader. It would
    // only change under us if the file were rewritten in place; geoipupdate
    // and packaged updaters write a new file and rename it over the old one,
    // which leaves this mapping on the old inode (the manual says so).
    unsafe { maxminddb::Reader::open_mmap(path) }
}
