//! How a phase of the request pipeline stops a request: a status and a
//! sentence for the error page. The worker turns it into a complete response.

use std::borrow::Cow;

use super::Status;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    /// Shown (HTML-escaped) on the error page.
    pub detail: Cow<'static, str>,
    /// For 416: the body's size, sent as `Content-Range: bytes */size`.
    pub unsatisfied_size: Option<u64>,
    /// For 429 and 503: seconds the client should wait, sent as Retry-After.
    pub retry_after: Option<u32>,
}

impl Refusal {
    pub fn new(status: Status, detail: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            status,
            detail: detail.into(),
            unsatisfied_size: None,
            retry_after: None,
        }
    }
}
