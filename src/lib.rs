//! Loomiere: an HTTP pseudo-streaming server for FLV and MP4 files.
//!
//! The binary (`main.rs`) reads the command line and starts the [`master`];
//! the modules below are also a library so that parsers can be tested and
//! fuzzed without sockets.
//!
//! The modules are layers, from the ground up: each may import only the
//! modules before it, never one after it or one of its own layer (`a | b`).
//! `tests/layering.rs` reads this diagram and fails the build's tests when
//! an import breaks it, and when unchecked code (the keyword) appears outside
//! `sys`.
//!
//! ```text
//! sys → http → media → package → stats → files → cache → lua → options
//!     → stream | tls → access | route → monitor | worker → master → main
//! ```

pub mod access;
pub mod cache;
pub mod files;

pub mod http;
pub mod lua;
pub mod master;
pub mod media;
pub mod monitor;

pub mod options;
pub mod package;
pub mod route;
pub mod stats;
pub mod stream;
pub mod sys;
pub mod tls;
pub mod worker;
