//! Routing a request to a file: virtual host selection, the sandbox, and
//! opening the target.

pub mod lua;
pub mod rewrite;
pub mod select;
pub mod target;
pub mod vhost;

pub use select::select_host;
pub use target::{TargetFile, open_target};

pub use vhost::{VirtualHost, VirtualHosts};
