//! HTTP/1.x: request heads, response heads, ranges, conditional requests, dates.
//!
//! Layer: above `sys` only. Knows nothing of hosts, files, media, options
//! or counters.
//!
//! Everything here is a pure function over bytes and strings; the worker does the I/O.

pub mod conditional;
pub mod date;
pub mod range;
pub mod refusal;
pub mod request;
pub mod response;
pub mod status;
pub mod target;

pub use refusal::Refusal;
pub use request::{Method, Parsed, Request};
pub use status::Status;
