//! Status codes and their reason phrases: the one table of them.

/// A response status the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    pub const OK: Status = Status(200);
    pub const NO_CONTENT: Status = Status(204);
    pub const PARTIAL_CONTENT: Status = Status(206);
    pub const NOT_MODIFIED: Status = Status(304);
    pub const PERMANENT_REDIRECT: Status = Status(308);
    pub const BAD_REQUEST: Status = Status(400);
    pub const UNAUTHORIZED: Status = Status(401);
    pub const FORBIDDEN: Status = Status(403);
    pub const NOT_FOUND: Status = Status(404);
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    pub const REQUEST_TIMEOUT: Status = Status(408);
    pub const URI_TOO_LONG: Status = Status(414);
    pub const CONFLICT: Status = Status(409);
    pub const GONE: Status = Status(410);
    pub const RANGE_NOT_SATISFIABLE: Status = Status(416);
    pub const MISDIRECTED_REQUEST: Status = Status(421);
    pub const TOO_MANY_REQUESTS: Status = Status(429);
    pub const CONTENT_TOO_LARGE: Status = Status(413);
    pub const HEADERS_TOO_LARGE: Status = Status(431);
    pub const INTERNAL_ERROR: Status = Status(500);
    pub const NOT_IMPLEMENTED: Status = Status(501);
    pub const SERVICE_UNAVAILABLE: Status = Status(503);
    pub const VERSION_NOT_SUPPORTED: Status = Status(505);

    pub fn code(self) -> u16 {
        self.0
    }

    /// The reason phrase for the status line and error pages.
    pub fn reason(self) -> &'static str {
        match self.0 {
            200 => "OK",
            204 => "No Content",
            206 => "Partial Content",
            301 => "Moved Permanently",
            302 => "Found",
            303 => "See Other",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            308 => "Permanent Redirect",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            409 => "Conflict",
            410 => "Gone",
            413 => "Content Too Large",
            415 => "Unsupported Media Type",
            414 => "URI Too Long",
            416 => "Range Not Satisfiable",
            421 => "Misdirected Request",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            451 => "Unavailable For Legal Reasons",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            _ => "Unknown",
        }
    }

    /// Whether a response with this status may carry a body at all (RFC 9110 §6.4.1).
    pub fn allows_body(self) -> bool {
        !(self.0 == 204 || self.0 == 304 || (100..200).contains(&self.0))
    }
}
