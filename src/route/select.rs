//! Server selection, the pipeline's first phase: the virtual host whose
//! pattern matches the request's host.

use super::{VirtualHost, VirtualHosts};
use crate::http::refusal::Refusal;
use crate::http::{Request, Status};

/// The host of `request` (Host header without port, lower-cased; empty
/// without one), and the virtual host serving it, or 404 naming it.
pub fn select_host<'a>(
    hosts: &'a VirtualHosts,
    request: &Request,
) -> Result<&'a VirtualHost, Refusal> {
    let host = request.host.as_deref().unwrap_or("");
    hosts
        .select(host)
        .ok_or_else(|| Refusal::new(Status::NOT_FOUND, format!("Host \"{host}\" is unknown.")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{HostOptions, Options};

    #[test]
    fn an_unknown_host_is_a_404_naming_it() {
        let mut options = Options::defaults();
        options.hosts = vec![HostOptions::new("^a$", "/")];
        let hosts = VirtualHosts::compile(&options).expect("compiles");
        let request = |host: &str| Request {
            host: Some(host.to_string()),
            ..Request::default()
        };
        assert!(select_host(&hosts, &request("a")).is_ok());
        let refusal = select_host(&hosts, &request("<b>")).err().expect("refused");
        assert_eq!(refusal.status, Status::NOT_FOUND);
        assert_eq!(refusal.detail, "Host \"<b>\" is unknown.");
    }
}
