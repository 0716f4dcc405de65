//! The rewrite phase: a host's routes, PCRE2 patterns tried in order against
//! the raw request target (path and query), the first match deciding.
//!
//! Actions: `rewrite` (the matched part replaced by a template, `$0`–`$9` and
//! `${name}`; served by the same host without routing again), `redirect`
//! (with `status`, default 302), `error` (4xx/5xx with an optional message).
//! The original's names stay accepted: `alter` (a rewrite of every match,
//! `%1`–`%9`), `route` (302) and `moved` (301).

use std::borrow::Cow;

use pcre2::bytes::{Captures, Regex, RegexBuilder};

use crate::http::Status;
use crate::options::{OptionsError, RouteAction, RouteOptions};

/// One compiled route.
pub struct Route {
    regex: Regex,
    action: Action,
    /// `hosts['…'].routes[n]`, for messages.
    pub name: String,
}

enum Action {
    Rewrite {
        template: Template,
        every_match: bool,
    },
    Redirect {
        template: Template,
        status: Status,
    },
    Error {
        status: Status,
        message: String,
    },
    /// A Lua function decides (see `route::lua`).
    Function {
        key: &'static str,
    },
}

/// What the routes decide for a target.
#[derive(Debug, PartialEq, Eq)]
pub enum Routing<'a> {
    /// Serve this target (the original, or a rewrite of it).
    Serve(Cow<'a, str>),
    Redirect {
        status: Status,
        location: String,
    },
    Error {
        status: Status,
        message: String,
    },
    /// Route `route` (1-based) is a Lua function (`call`, or a function given
    /// as `key`): the worker's Lua state decides.
    Call {
        route: usize,
        key: &'static str,
    },
}

/// A replacement template: literal text and references to groups.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Group(usize),
    Named(String),
}

impl Template {
    /// Parses `$0`–`$9` and `${name}` (and, with `percent`, the original's
    /// `%0`–`%9`); `$$` and `%%` are literal. Checks every group exists.
    fn parse(text: &str, percent: bool, regex: &Regex) -> Result<Template, String> {
        let groups = regex.captures_len();
        let names = regex.capture_names();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let is_mark = c == '$' || (percent && c == '%');
            if !is_mark {
                literal.push(c);
                continue;
            }
            match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    let group = d as usize - '0' as usize;
                    if group >= groups {
                        return Err(format!(
                            "refers to group {c}{d}, but the pattern has {} group{}",
                            groups - 1,
                            if groups == 2 { "" } else { "s" }
                        ));
                    }
                    flush(&mut literal, &mut parts);
                    parts.push(Part::Group(group));
                }
                Some('{') if c == '$' => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|&n| n != '}').collect();
                    if !names.iter().any(|n| n.as_deref() == Some(name.as_str())) {
                        return Err(format!(
                            "refers to group ${{{name}}}, which the pattern does not name"
                        ));
                    }
                    flush(&mut literal, &mut parts);
                    parts.push(Part::Named(name));
                }
                Some(same) if same == c => {
                    chars.next();
                    literal.push(c);
                }
                _ => literal.push(c),
            }
        }
        flush(&mut literal, &mut parts);
        Ok(Template { parts })
    }

    fn expand(&self, captures: &Captures, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Group(i) => {
                    if let Some(m) = captures.get(*i) {
                        out.push_str(&String::from_utf8_lossy(m.as_bytes()));
                    }
                }
                Part::Named(name) => {
                    if let Some(m) = captures.name(name) {
                        out.push_str(&String::from_utf8_lossy(m.as_bytes()));
                    }
                }
            }
        }
    }
}

fn flush(literal: &mut String, parts: &mut Vec<Part>) {
    if !literal.is_empty() {
        parts.push(Part::Text(std::mem::take(literal)));
    }
}

impl Route {
    /// Compiles route `index` (1-based, as in Lua) of host `host`.
    pub fn compile(host: &str, index: usize, route: &RouteOptions) -> Result<Route, OptionsError> {
        let name = format!("hosts['{host}'].routes[{index}]");
        let regex = RegexBuilder::new()
            .jit_if_available(true)
            .build(&route.pattern)
            .map_err(|e| {
                OptionsError::option(&format!("{name}.match"), format!("does not compile: {e}"))
            })?;
        let template = |key: &str, text: &str, percent: bool| {
            Template::parse(text, percent, &regex).map_err(|e| {
                OptionsError::option(&format!("{name}.{key}"), format!("'{text}' {e}"))
            })
        };
        let action = match &route.action {
            RouteAction::Rewrite(text) => Action::Rewrite {
                template: template("rewrite", text, false)?,
                every_match: false,
            },
            RouteAction::Alter(text) => Action::Rewrite {
                template: template("alter", text, true)?,
                every_match: true,
            },
            RouteAction::Redirect {
                template: text,
                status,
                key,
            } => Action::Redirect {
                template: template(key, text, *key != "redirect")?,
                status: Status(*status),
            },
            RouteAction::Error { status, message } => Action::Error {
                status: Status(*status),
                message: message.clone(),
            },
            RouteAction::Function { key } => Action::Function { key },
        };
        Ok(Route {
            regex,
            action,
            name,
        })
    }
}

/// Applies the first route whose pattern matches `target`.
pub fn rewrite<'a>(routes: &[Route], target: &'a str) -> Routing<'a> {
    for (index, route) in routes.iter().enumerate() {
        let captures = match route.regex.captures(target.as_bytes()) {
            Ok(Some(captures)) => captures,
            Ok(None) => continue,
            Err(error) => return match_failed(route, &error),
        };
        return match &route.action {
            Action::Rewrite {
                template,
                every_match,
            } => {
                let mut out = String::with_capacity(target.len() + 32);
                let mut last = 0;
                let mut replace = |captures: &Captures| {
                    // Patterns match bytes: a match that starts or ends inside
                    // a character of the target is not replaced (PCRE2's UTF
                    // mode would instead stop an iteration over empty
                    // matches there, forever).
                    if let Some(whole) = captures.get(0).filter(|m| {
                        m.start() >= last
                            && target.is_char_boundary(m.start())
                            && target.is_char_boundary(m.end())
                    }) {
                        out.push_str(&target[last..whole.start()]);
                        template.expand(captures, &mut out);
                        last = whole.end();
                    }
                };
                if *every_match {
                    // The iterator repeats an error forever: stop at the first.
                    for found in route.regex.captures_iter(target.as_bytes()) {
                        match found {
                            Ok(captures) => replace(&captures),
                            Err(error) => return match_failed(route, &error),
                        }
                    }
                } else {
                    replace(&captures);
                }
                out.push_str(&target[last..]);
                Routing::Serve(Cow::Owned(out))
            }
            Action::Redirect { template, status } => {
                let mut location = String::new();
                template.expand(&captures, &mut location);
                Routing::Redirect {
                    status: *status,
                    location,
                }
            }
            Action::Error { status, message } => Routing::Error {
                status: *status,
                message: message.clone(),
            },
            Action::Function { key } => Routing::Call {
                route: index + 1,
                key,
            },
        };
    }
    Routing::Serve(Cow::Borrowed(target))
}

/// A pattern that fails to match (PCRE2's match or depth limit, reached by
/// backtracking on a crafted target) answers 500 rather than skipping the
/// route: a skipped route could be the one that refuses the request.
fn match_failed(route: &Route, error: &pcre2::Error) -> Routing<'static> {
    log::error!(
        "{}: the pattern failed on this request: {error}",
        route.name
    );
    Routing::Error {
        status: Status::INTERNAL_ERROR,
        message: "The route's pattern exceeded its match limit.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pattern: &str, action: RouteAction) -> Route {
        Route::compile(
            "h",
            1,
            &RouteOptions {
                pattern: pattern.to_string(),
                action,
            },
        )
        .expect("compiles")
    }

    #[test]
    fn matches_never_split_a_character() {
        // Found by fuzz/fuzz_targets/routes.rs: an empty pattern in `alter`
        // matched between the two bytes of 'ʷ' and the slice panicked.
        let every = route("", RouteAction::Alter("!".into()));
        match rewrite(&[every], "ʷ") {
            Routing::Serve(new) => assert_eq!(new, "!ʷ!"),
            _ => panic!("served"),
        }
    }

    #[test]
    fn rewrites_replace_the_match_with_captures() {
        let routes = [route(
            r"^/old/(\w+)\.flv(?<rest>.*)$",
            RouteAction::Rewrite("/new/$1.flv?from=${rest}".into()),
        )];
        assert_eq!(
            rewrite(&routes, "/old/film.flv?x"),
            Routing::Serve(Cow::Owned("/new/film.flv?from=?x".into()))
        );
        assert_eq!(
            rewrite(&routes, "/other"),
            Routing::Serve(Cow::Borrowed("/other"))
        );
        // Unanchored: only the matched part changes.
        let partial = [route("/v/", RouteAction::Rewrite("/video/".into()))];
        assert_eq!(
            rewrite(&partial, "/a/v/b.mp4"),
            Routing::Serve(Cow::Owned("/a/video/b.mp4".into()))
        );
    }

    #[test]
    fn alter_replaces_every_match_with_percent_groups() {
        let routes = [route("([a-z])-", RouteAction::Alter("%1_".into()))];
        assert_eq!(
            rewrite(&routes, "/a-b-c"),
            Routing::Serve(Cow::Owned("/a_b_c".into()))
        );
    }

    #[test]
    fn the_first_match_decides() {
        let routes = [
            route(
                "^/gone/",
                RouteAction::Error {
                    status: 410,
                    message: "moved away".into(),
                },
            ),
            route(
                "^/(.*)$",
                RouteAction::Redirect {
                    template: "https://cdn.example/$1".into(),
                    status: 301,
                    key: "redirect",
                },
            ),
        ];
        assert_eq!(
            rewrite(&routes, "/gone/x"),
            Routing::Error {
                status: Status(410),
                message: "moved away".into()
            }
        );
        assert_eq!(
            rewrite(&routes, "/a.mp4?start=3"),
            Routing::Redirect {
                status: Status(301),
                location: "https://cdn.example/a.mp4?start=3".into()
            }
        );
    }

    #[test]
    fn templates_may_only_name_groups_the_pattern_has() {
        let bad = |pattern: &str, template: &str| {
            Route::compile(
                "h",
                2,
                &RouteOptions {
                    pattern: pattern.into(),
                    action: RouteAction::Rewrite(template.into()),
                },
            )
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(
            bad("^/(a)$", "/$2"),
            Some("option 'hosts['h'].routes[2].rewrite' '/$2' refers to group $2, but the pattern has 1 group".into())
        );
        assert!(bad("^/(a)$", "/${x}").is_some());
        assert!(bad("(", "/").is_some_and(|e| e.contains("routes[2].match")));
        assert_eq!(bad("^/(a)$", "/$1$$"), None);
    }

    /// The fuzzer's input of the CI run on commit 545d0a2: a backtracking
    /// pattern in an `alter` route exceeded PCRE2's match limit on the second
    /// match, and the iterator over matches yielded that error forever.
    fn backtracking_target() -> String {
        format!("/olat=\u{1}\u{1}{}\n3", "\u{2}".repeat(40))
    }

    #[test]
    fn a_pattern_past_its_match_limit_answers_500_and_never_loops() {
        let target = backtracking_target();
        for action in [
            RouteAction::Alter("/new/$1?x".into()),
            RouteAction::Rewrite("/new/$1?x".into()),
        ] {
            let routes = [
                route("(?:(.*)+/|(.*)+x)", action),
                route("^/", RouteAction::Rewrite("/fallthrough".into())),
            ];
            let start = std::time::Instant::now();
            match rewrite(&routes, &target) {
                Routing::Error { status, message } => {
                    assert_eq!(status, Status(500));
                    assert!(message.contains("match limit"), "{message}");
                }
                other => panic!("{other:?}"),
            }
            // Bounded by PCRE2's limits, not by the length of the target.
            assert!(start.elapsed() < std::time::Duration::from_secs(30));
        }
    }

    #[test]
    fn alter_stops_at_a_limit_error_after_earlier_matches() {
        let target = format!("/o{}", backtracking_target());
        let routes = [route("^/o|(.*)+/", RouteAction::Alter("/new/$1?x".into()))];
        assert!(matches!(
            rewrite(&routes, &target),
            Routing::Error {
                status: Status(500),
                ..
            }
        ));
    }
}
