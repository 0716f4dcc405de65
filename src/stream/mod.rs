//! A stream is a response body in flight: the generated prefix (a seek's
//! rewritten header) written from memory, then the file's bytes by
//! `sendfile(2)`, paced.
//!
//! Pacing is decided once per response ([`Pace::choose`]): on the media
//! timeline (the player gets `throttle` seconds of play ahead at line speed,
//! then about one `period` of media each period), at a constant rate, or not
//! at all. Between slices a stream holds no buffer and costs one timer on the
//! worker's wheel; the connection asks [`Stream::send`] what to do next.

pub mod hints;
pub mod schedule;
pub mod size;

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::cache::MediaCache;
use crate::media::{FileSource, MediaKind, Prepared, Timeline};
use crate::package::fmp4::Segment;
use crate::route::open_files::OpenFile;
use crate::stats::StatsSlot;
use crate::sys;
use hints::Hint;
use schedule::Allowance;

/// The shortest `period` accepted: slices closer together would only cost CPU.
pub const MIN_PERIOD_SECS: f64 = 0.05;
/// Most bytes one sendfile call may move, so one fast client cannot hold the loop.
const SENDFILE_CHUNK_BYTES: u64 = 512 * 1024;
/// Most prefix bytes generated into memory at once: a one-hour film's
/// rewritten header is about a megabyte, and a slow client should not hold it all.
pub const PREFIX_CHUNK_BYTES: u64 = 64 * 1024;

/// The pacing settings of one virtual host (the global options, overridden
/// per host).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacing {
    /// Seconds of play time sent ahead of the player; 0 turns the media throttle off.
    pub throttle: f64,
    /// Seconds between slices.
    pub period: f64,
    /// Bodies shorter than this many bytes are not throttled on their timeline.
    pub throttle_from: u64,
    /// Constant rate in bytes per second for bodies without a timeline; 0 = none.
    pub rate: u64,
    /// Bytes sent at full speed before `rate` applies.
    pub rate_after: u64,
    /// Seconds a response may make no progress before the connection is closed.
    pub send_timeout: f64,
}

impl Pacing {
    pub const DEFAULT: Pacing = Pacing {
        throttle: 20.0,
        period: 1.0,
        throttle_from: 1 << 20,
        rate: 0,
        rate_after: 0,
        send_timeout: 60.0,
    };
}

/// How a body's bytes are released over time.
#[derive(Clone, Debug)]
pub enum Pace {
    /// As fast as the client reads.
    Full,
    /// `lead` seconds ahead of the play head on the body's media timeline.
    Media {
        timeline: Timeline,
        /// Media time (from the body's start) that the response's first byte reaches.
        start_seconds: f64,
        lead: f64,
        period: f64,
    },
    /// `bytes_per_second` after the first `after` bytes.
    Rate {
        bytes_per_second: u64,
        after: u64,
        period: f64,
    },
}

impl Pace {
    /// The pace of a response covering body bytes `[first, end)`. `timeline`
    /// is the body's timeline when it honestly says what a player needs from
    /// `first` on (see the media module); None for other files.
    pub fn choose(pacing: &Pacing, timeline: Option<Timeline>, first: u64, end: u64) -> Pace {
        let length = end.saturating_sub(first);
        match timeline {
            Some(timeline) if pacing.throttle > 0.0 && length >= pacing.throttle_from => {
                Pace::Media {
                    start_seconds: timeline.seconds_at(first),
                    timeline,
                    lead: pacing.throttle,
                    period: pacing.period,
                }
            }
            _ if pacing.rate > 0 => Pace::Rate {
                bytes_per_second: pacing.rate,
                after: pacing.rate_after,
                period: pacing.period,
            },
            _ => Pace::Full,
        }
    }

    /// Whether the timeline needs looking at: the caller skips indexing a
    /// file when its body would not be throttled anyway.
    pub fn wants_timeline(pacing: &Pacing, length: u64) -> bool {
        pacing.throttle > 0.0 && length >= pacing.throttle_from
    }

    pub fn is_throttled(&self) -> bool {
        !matches!(self, Pace::Full)
    }
}

/// What the connection should do after [`Stream::send`].
#[derive(Debug)]
pub enum Progress {
    /// Every byte of the body was handed to the socket.
    Finished,
    /// The allowance is used up: sleep on the timer wheel until this instant.
    Sleep(Instant),
    /// The socket is full: wait for it to become writable.
    Blocked,
    /// This turn's fair share is used: let other connections run first.
    Yield,
    /// The file is shorter than when it was opened (changed under us).
    FileShrank,
    /// The socket failed (the client left).
    Failed(io::Error),
}

/// Where a body's bytes come from.
enum Source {
    /// The file itself.
    Plain,
    /// A seek: its generated header, then one range of the file.
    Seek(Rc<Prepared>),
    /// A packaged media segment: its generated head, then ranges of the file.
    Segment(Rc<Segment>),
}

impl Source {
    /// Length of the generated part that comes first.
    fn prefix_len(&self) -> u64 {
        match self {
            Source::Plain => 0,
            Source::Seek(prepared) => prepared.prefix.len(),
            Source::Segment(segment) => segment.head.len() as u64,
        }
    }

    /// Appends generated bytes `[from, to)` to `out`.
    fn write_prefix(&self, from: u64, to: u64, out: &mut Vec<u8>) {
        match self {
            Source::Plain => {}
            Source::Seek(prepared) => prepared.prefix.write(from, to, out),
            Source::Segment(segment) => {
                let to = to.min(segment.head.len() as u64);
                if from < to {
                    out.extend_from_slice(&segment.head[from as usize..to as usize]);
                }
            }
        }
    }

    /// The file offset of body offset `position` (past the prefix) and how
    /// many bytes follow it contiguously in the file.
    fn file_span(&self, position: u64) -> (u64, u64) {
        match self {
            Source::Plain => (position, u64::MAX),
            Source::Seek(prepared) => {
                let offset = prepared.file_start + (position - prepared.prefix.len());
                (offset, prepared.file_end.saturating_sub(offset))
            }
            Source::Segment(segment) => {
                let mut skip = position - segment.head.len() as u64;
                for range in &segment.ranges {
                    let len = range.end - range.start;
                    if skip < len {
                        return (range.start + skip, len - skip);
                    }
                    skip -= len;
                }
                (0, 0)
            }
        }
    }
}

/// A response body in flight.
pub struct Stream {
    file: Rc<OpenFile>,
    /// Where its bytes come from.
    source: Source,
    /// Body offsets below this are generated (0 for a plain file).
    prefix_len: u64,
    /// Next body offset to send.
    position: u64,
    /// The response's first body offset (the Range start, else 0).
    first: u64,
    /// One past the response's last body offset.
    end: u64,
    pace: Pace,
    /// When the prefix was handed to the socket and pacing began.
    started: Option<Instant>,
    /// Where in each period this stream wakes, as a fraction of it.
    phase: f64,
    pub send_timeout: Duration,
    /// The player's reports steer a media-paced stream that has a key.
    hint: Option<Hint>,
}

impl Stream {
    /// The body of a response covering bytes `[first, end)` of `relative`,
    /// paced on the media timeline when the body has an honest one and is
    /// long enough, else at the host's constant rate, if any. A plain media
    /// file is indexed for its timeline (once: the cache keeps it).
    #[allow(clippy::too_many_arguments)]
    pub fn for_response(
        pacing: &Pacing,
        media: &mut MediaCache,
        slot: &StatsSlot,
        relative: &[u8],
        file: Rc<OpenFile>,
        prepared: Option<Rc<Prepared>>,
        first: u64,
        end: u64,
    ) -> Stream {
        let wants_timeline = Pace::wants_timeline(pacing, end - first);
        match prepared {
            Some(prepared) => {
                let timeline = wants_timeline.then(|| prepared.timeline.clone());
                let pace = Pace::choose(pacing, timeline, first, end);
                Stream::prepared(file, prepared, first, end, pace, pacing)
            }
            None => {
                let timeline = MediaKind::of_path(relative)
                    .filter(|_| wants_timeline)
                    .and_then(|kind| {
                        let source = FileSource {
                            file: &file.handle,
                            size: file.identity.size,
                        };
                        media.whole_file_timeline(&source, file.identity, kind, slot)
                    })
                    .filter(|(_, honest_from)| first >= *honest_from)
                    .map(|(timeline, _)| timeline);
                let pace = Pace::choose(pacing, timeline, first, end);
                Stream::plain(file, first, end, pace, pacing)
            }
        }
    }

    /// A response covering bytes `[first, end)` of a plain file.
    pub fn plain(file: Rc<OpenFile>, first: u64, end: u64, pace: Pace, pacing: &Pacing) -> Stream {
        Stream::new(file, Source::Plain, first, end, pace, pacing)
    }

    /// A response covering bytes `[first, end)` of a packaged media segment:
    /// never paced (the player's own buffer paces segments).
    pub fn segment(
        file: Rc<OpenFile>,
        segment: Rc<Segment>,
        first: u64,
        end: u64,
        pacing: &Pacing,
    ) -> Stream {
        Stream::new(
            file,
            Source::Segment(segment),
            first,
            end,
            Pace::Full,
            pacing,
        )
    }

    /// A response covering bytes `[first, end)` of a prepared (seeked) body.
    pub fn prepared(
        file: Rc<OpenFile>,
        prepared: Rc<Prepared>,
        first: u64,
        end: u64,
        pace: Pace,
        pacing: &Pacing,
    ) -> Stream {
        Stream::new(file, Source::Seek(prepared), first, end, pace, pacing)
    }

    fn new(
        file: Rc<OpenFile>,
        source: Source,
        first: u64,
        end: u64,
        pace: Pace,
        pacing: &Pacing,
    ) -> Stream {
        Stream {
            file,
            prefix_len: source.prefix_len(),
            source,
            position: first,
            first,
            end,
            pace,
            started: None,
            phase: 0.0,
            send_timeout: Duration::from_secs_f64(pacing.send_timeout),
            hint: None,
        }
    }

    /// Whether this is a packaged media segment (counted apart).
    pub fn is_segment(&self) -> bool {
        matches!(self.source, Source::Segment(_))
    }

    /// Whether the stream is paced on a media timeline (only those follow hints).
    pub fn is_media_paced(&self) -> bool {
        matches!(self.pace, Pace::Media { .. })
    }

    /// Lets the player's reports steer this stream.
    pub fn attach_hint(&mut self, hint: Hint) {
        self.hint = Some(hint);
    }

    /// Body bytes not yet handed to the socket (or to the prefix buffer).
    pub fn unsent(&self) -> u64 {
        self.end - self.position
    }

    /// Whether generated prefix bytes remain.
    pub fn in_prefix(&self) -> bool {
        self.position < self.prefix_len.min(self.end)
    }

    /// Appends the next piece of the generated prefix to `out`; returns its length.
    pub fn fill_prefix(&mut self, out: &mut Vec<u8>) -> u64 {
        let to = (self.position + PREFIX_CHUNK_BYTES)
            .min(self.prefix_len)
            .min(self.end);
        if to <= self.position {
            return 0;
        }
        let before = out.len();
        self.source.write_prefix(self.position, to, out);
        let written = (out.len() - before) as u64;
        self.position += written;
        written
    }

    /// Whether the pacing clock has started (the prefix is out).
    pub fn started(&self) -> bool {
        self.started.is_some()
    }

    /// Starts the pacing clock: the head and the generated prefix are out.
    /// `phase` (from 0 to 1) places this stream's wake-ups within each period.
    pub fn start(&mut self, now: Instant, phase: f64) {
        if self.started.is_none() {
            self.started = Some(now);
            self.phase = phase.clamp(0.0, 1.0);
        }
    }

    pub fn is_throttled(&self) -> bool {
        self.pace.is_throttled()
    }

    fn allowance(&mut self, now: Instant) -> Allowance {
        let elapsed = self
            .started
            .map_or(Duration::ZERO, |t0| now.saturating_duration_since(t0));
        match &self.pace {
            Pace::Full => Allowance {
                until: self.end,
                next: None,
            },
            Pace::Media {
                timeline,
                start_seconds,
                lead,
                period,
            } => {
                let boundaries = (*period, self.phase * period);
                let wall_clock = schedule::media_allowance(
                    timeline,
                    *start_seconds,
                    *lead,
                    boundaries,
                    elapsed,
                    self.end,
                );
                let Some(hint) = &mut self.hint else {
                    return wall_clock;
                };
                let now_ms = sys::monotonic_micros() / 1000;
                // Without a fresh report the wall clock guesses, as unhinted.
                let Some(report) = hint.table.read(&hint.registration, now_ms) else {
                    hint.account(false, 0);
                    return wall_clock;
                };
                let received = hint.received_at_report(&report, timeline.seconds_at(self.position));
                let hinted = schedule::hinted_allowance(
                    timeline,
                    &report,
                    (received, *lead),
                    boundaries,
                    elapsed,
                    self.end,
                );
                hint.account(report.paused, wall_clock.until.saturating_sub(hinted.until));
                hinted
            }
            Pace::Rate {
                bytes_per_second,
                after,
                period,
            } => schedule::rate_allowance(
                *bytes_per_second,
                *after,
                (*period, self.phase * period),
                elapsed,
                self.first,
                self.end,
            ),
        }
    }

    /// Sends file bytes to `socket` up to the allowance at `now`. `budget` is
    /// what this loop turn still lets the connection send; `on_sent` is told
    /// of every successful sendfile.
    pub fn send(
        &mut self,
        socket: &impl AsRawFd,
        now: Instant,
        budget: &mut u64,
        mut on_sent: impl FnMut(u64),
    ) -> Progress {
        loop {
            if self.position >= self.end {
                return Progress::Finished;
            }
            let allowance = self.allowance(now);
            if allowance.until <= self.position {
                return match (allowance.next, self.started) {
                    (Some(next), Some(t0)) => Progress::Sleep(t0 + next),
                    // Cannot happen (an allowance short of the end always has
                    // a next step); sending on is the safe answer.
                    _ => Progress::Sleep(now),
                };
            }
            if *budget == 0 {
                return Progress::Yield;
            }
            let (mut file_offset, contiguous) = self.source.file_span(self.position);
            if contiguous == 0 {
                return Progress::FileShrank; // cannot happen: the ranges add up to the body
            }
            let count = (allowance.until - self.position)
                .min(SENDFILE_CHUNK_BYTES)
                .min(*budget)
                .min(contiguous);
            let before = file_offset;
            match sys::sendfile(
                socket.as_raw_fd(),
                self.file.handle.as_raw_fd(),
                &mut file_offset,
                count as usize,
            ) {
                Ok(0) => return Progress::FileShrank,
                Ok(_) => {
                    let n = file_offset - before;
                    self.position += n;
                    *budget = budget.saturating_sub(n);
                    on_sent(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Progress::Failed(e),
            }
        }
    }
}
