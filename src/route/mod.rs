//! Routing a request to a file: virtual host selection and the sandbox.

pub mod open_files;
pub mod sandbox;
pub mod vhost;

pub use vhost::{VirtualHost, VirtualHosts};
