//! Virtual hosts: the first host whose PCRE2 pattern matches the Host header wins.

use std::fs::File;

use pcre2::bytes::{Regex, RegexBuilder};

use crate::files::Folder;
use crate::options::{Options, OptionsError, Pacing};

use super::rewrite::Route;

/// One configured host, ready to serve: its compiled pattern and its open folder.
pub struct VirtualHost {
    /// None for the empty pattern, which matches every host without running a regex.
    pattern: Option<Regex>,
    /// Position in the configuration, which identifies the host in caches.
    pub index: usize,
    pub pattern_text: String,
    /// The folders, tried in order for each file.
    pub folders: Vec<Folder>,
    /// The pacing options, with this host's overrides applied.
    pub pacing: Pacing,
    /// The host's routes, tried in order by the rewrite phase.
    pub routes: Vec<Route>,
    /// Whether players' reports steer its streams (`hints = true`).
    pub hints: bool,
    /// Seconds per HLS/DASH segment (the host's, else the global option).
    pub segment_seconds: f64,
    /// The default subtitle language, and names over the built-in table.
    pub subtitle_default: Option<String>,
    pub subtitle_names: Vec<(String, String)>,
}

/// A host's pattern (caseless, with the JIT where available); None for the
/// empty pattern, which matches every host without running a regex.
pub fn compile_pattern(pattern: &str) -> Result<Option<Regex>, OptionsError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    RegexBuilder::new()
        .jit_if_available(true)
        .caseless(true)
        .build(pattern)
        .map(Some)
        .map_err(|e| {
            OptionsError::option(
                &format!("hosts['{pattern}']"),
                format!("pattern does not compile: {e}"),
            )
        })
}

/// The hosts in the order they were defined.
pub struct VirtualHosts {
    hosts: Vec<VirtualHost>,
}

impl VirtualHosts {
    /// Compiles every pattern (with the JIT where available) and opens every folder.
    pub fn compile(options: &Options) -> Result<VirtualHosts, OptionsError> {
        let hosts = &options.hosts;
        let mut compiled = Vec::with_capacity(hosts.len());
        for host in hosts {
            let option = format!("hosts['{}']", host.pattern);
            let pattern = compile_pattern(&host.pattern)?;
            let folders = host
                .folders
                .iter()
                .map(|path| {
                    let dir = File::open(path).map_err(|e| {
                        OptionsError::option(
                            &option,
                            format!("folder {} cannot be opened: {e}", path.display()),
                        )
                    })?;
                    Ok(Folder {
                        path: path.clone(),
                        dir,
                    })
                })
                .collect::<Result<Vec<_>, OptionsError>>()?;
            let routes = host
                .routes
                .iter()
                .enumerate()
                .map(|(i, route)| Route::compile(&host.pattern, i + 1, route))
                .collect::<Result<Vec<_>, _>>()?;
            compiled.push(VirtualHost {
                pattern,
                index: compiled.len(),
                pattern_text: host.pattern.clone(),
                folders,
                pacing: options.pacing_of(host),
                routes,
                hints: host.hints,
                segment_seconds: host.segment_seconds.unwrap_or(options.segment_seconds),
                subtitle_default: host.subtitle_default.clone(),
                subtitle_names: host.subtitle_names.clone(),
            });
        }
        Ok(VirtualHosts { hosts: compiled })
    }

    /// The first host whose pattern matches `host` (unanchored search, so
    /// anchors in the pattern decide), or None.
    pub fn select(&self, host: &str) -> Option<&VirtualHost> {
        self.hosts
            .iter()
            .find(|candidate| match &candidate.pattern {
                None => true,
                // A matching error (resource limits) counts as no match.
                Some(regex) => regex.is_match(host.as_bytes()).unwrap_or(false),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::HostOptions;
    use std::path::PathBuf;

    fn options_with(patterns: &[&str]) -> Options {
        let mut options = Options::defaults();
        options.hosts = patterns
            .iter()
            .map(|p| HostOptions::new(*p, PathBuf::from("/")))
            .collect();
        options
    }

    fn hosts(patterns: &[&str]) -> VirtualHosts {
        VirtualHosts::compile(&options_with(patterns)).expect("compiles")
    }

    #[test]
    fn first_match_wins_and_empty_matches_all() {
        let hosts = hosts(&[r"^video\.example\.com$", "example", ""]);
        assert_eq!(
            hosts
                .select("video.example.com")
                .map(|h| h.pattern_text.as_str()),
            Some(r"^video\.example\.com$")
        );
        assert_eq!(
            hosts
                .select("www.EXAMPLE.org")
                .map(|h| h.pattern_text.as_str()),
            Some("example")
        );
        assert_eq!(
            hosts.select("other").map(|h| h.pattern_text.as_str()),
            Some("")
        );
    }

    #[test]
    fn no_match_is_none_and_bad_patterns_are_errors() {
        assert!(hosts(&["^a$"]).select("b").is_none());
        let error = VirtualHosts::compile(&options_with(&["("]))
            .err()
            .expect("error")
            .to_string();
        assert!(
            error.starts_with("option 'hosts['(']' pattern does not compile"),
            "{error}"
        );
    }
}
