//! Loomiere: an HTTP pseudo-streaming server for FLV and MP4 files.
//!
//! The binary (`main.rs`) reads the command line and starts the [`master`];
//! the modules below are also a library so that parsers can be tested and
//! fuzzed without sockets.

pub mod access;
pub mod cache;
pub mod http;
pub mod lua;
pub mod master;
pub mod media;
pub mod options;
pub mod package;
pub mod route;
pub mod stats;
pub mod stream;
pub mod sys;
pub mod worker;
