//! Routing a request to a file: virtual host selection, the routes'
//! rewrites, redirects and Lua functions, and opening the target (through
//! the sandbox of `files`).
//!
//! Layer: compiles hosts and routes from `options`' plain settings; imports
//! neither `access` (its peer: the worker's site pairs each host with its
//! access rules) nor `worker`.

pub mod lua;
pub mod rewrite;
pub mod select;
pub mod target;
pub mod vhost;

pub use select::select_host;
pub use target::{TargetFile, open_target};

pub use vhost::{VirtualHost, VirtualHosts};
