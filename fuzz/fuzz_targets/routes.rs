//! Route patterns and templates on any text: compiling refuses bad ones
//! with an error, and rewriting any target never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::options::{RouteAction, RouteOptions};
use loomiere::route::rewrite::{Route, Routing, rewrite};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\u{1}');
    let (Some(pattern), Some(template), Some(target)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let actions = [
        RouteAction::Rewrite(template.to_string()),
        RouteAction::Alter(template.to_string()),
        RouteAction::Redirect { template: template.to_string(), status: 302, key: "redirect" },
    ];
    let routes: Vec<Route> = actions
        .into_iter()
        .filter_map(|action| {
            Route::compile("fuzz", 1, &RouteOptions { pattern: pattern.to_string(), action }).ok()
        })
        .collect();
    for route in routes.chunks(1) {
        match rewrite(route, target) {
            Routing::Serve(new) => assert!(new.len() < 64 * 1024 * 1024),
            Routing::Redirect { location, .. } => assert!(location.len() < 64 * 1024 * 1024),
            _ => {}
        }
    }
});
