//! The manual cannot drift from the program: every flag `--help` prints,
//! every key options.lua accepts and every line `/monitor` shows is in
//! man/loomiere.8, which mandoc and groff read without a complaint.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{BINARY, Server, TempDir, admin_get, free_port, options_file};

/// The manual as text: requests (`.B`, `.BR`, `.BI`, ...) joined back into
/// the words they print, escapes and font changes removed.
fn manual_text() -> String {
    let path = format!("{}/man/loomiere.8", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(path).expect("man/loomiere.8");
    let mut text = String::new();
    for line in source.lines() {
        let line = line
            .replace("\\-", "-")
            .replace("\\e", "\\")
            .replace("\\fB", "")
            .replace("\\fI", "")
            .replace("\\fR", "")
            .replace("\\fP", "")
            .replace("\\&", "");
        let font_request = [".B ", ".I ", ".BR ", ".RB ", ".BI ", ".IB ", ".IR ", ".RI "]
            .iter()
            .find(|request| line.starts_with(**request));
        match font_request {
            // Alternating-font requests print their arguments without spaces.
            Some(request) if request.len() > 3 => {
                text.push_str(&words(&line[request.len()..]).concat());
            }
            Some(request) => text.push_str(&words(&line[request.len()..]).join(" ")),
            None => text.push_str(&line),
        }
        text.push('\n');
    }
    text
}

/// A request's arguments, with double quotes grouping words.
fn words(arguments: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in arguments.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether `word` occurs in `text` as a whole word (not inside a longer name).
fn mentions(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

#[test]
fn every_flag_of_help_is_in_the_manual() {
    let output = Command::new(BINARY)
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&output.stdout).to_string();
    let manual = manual_text();
    let mut flags = BTreeSet::new();
    for word in help.split(|c: char| c.is_whitespace() || c == ',') {
        let is_flag = (word.starts_with("--") && word.len() > 3)
            || (word.len() == 2 && word.starts_with('-') && word != "--");
        if is_flag {
            flags.insert(word.trim_end_matches(['.', ')', ':']).to_string());
        }
    }
    assert!(
        flags.len() >= 20,
        "too few flags read from --help: {flags:?}"
    );
    let missing: Vec<_> = flags.iter().filter(|f| !mentions(&manual, f)).collect();
    assert!(
        missing.is_empty(),
        "flags of --help missing from man/loomiere.8: {missing:?}"
    );
    for section in ["OPTIONS", "SYNOPSIS"] {
        assert!(manual.contains(&format!(".SH {section}")), "no {section}");
    }
}

#[test]
fn every_option_key_is_in_the_manual() {
    let manual = manual_text();
    let keys = loomiere::options::lua::accepted_keys();
    assert!(keys.len() > 50, "too few keys: {}", keys.len());
    let missing: Vec<_> = keys
        .iter()
        .filter(|(_, key)| !mentions(&manual, key))
        .collect();
    assert!(
        missing.is_empty(),
        "option keys missing from man/loomiere.8: {missing:?}"
    );
    // Each global option has its own entry in CONFIGURATION, with its type and
    // default in the tag line.
    let configuration = section(&manual, "CONFIGURATION");
    for (place, key) in &keys {
        if *place == "options" && *key != "cpus" {
            let entry = configuration
                .lines()
                .any(|line| line.starts_with(&format!("{key} (")) || line == *key);
            assert!(entry, "CONFIGURATION has no entry for options.{key}");
        }
    }
}

#[test]
fn every_monitor_line_is_in_the_manual() {
    let dir = TempDir::new("manual-monitor");
    dir.write("clip.flv", b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
    let options = options_file(
        &dir,
        &format!(
            "options.hosts['^video-1\\\\.example$'] = {{ folders = {{ '{0}' }} }}\n\
             options.hosts[''] = {{ folder = '{0}' }}\n",
            dir.path().display()
        ),
    );
    let admin = free_port();
    let server = Server::start(&[
        "-o",
        options.to_str().expect("utf8"),
        "-r",
        &admin.to_string(),
    ]);
    for (host, path) in [("video-1.example", "/clip.flv"), ("other", "/none.flv")] {
        let _ = common::get_from(server.port, "127.0.0.1", host, path, &[]);
    }
    let manual = manual_text();
    let monitor = admin_get(admin, "/monitor");
    let mut names = BTreeSet::new();
    for line in monitor.lines() {
        if let Some((name, _)) = line.split_once(" = ") {
            names.insert(generic_name(
                name.trim(),
                dir.path().to_str().expect("utf8"),
            ));
        }
    }
    assert!(names.len() > 40, "too few monitor lines: {names:?}");
    let missing: Vec<_> = names.iter().filter(|n| !mentions(&manual, n)).collect();
    assert!(
        missing.is_empty(),
        "/monitor lines missing from man/loomiere.8: {missing:?}"
    );
    // Every Prometheus family, and the JSON form's own key.
    let metrics = admin_get(admin, "/metrics");
    let families: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(families.len() > 30, "too few families: {families:?}");
    let missing: Vec<_> = families.iter().filter(|f| !mentions(&manual, f)).collect();
    assert!(
        missing.is_empty(),
        "/metrics families missing from man/loomiere.8: {missing:?}"
    );
    let json = admin_get(admin, "/monitor?format=json");
    assert!(json.contains("\"data:delay:histogram\""));
    assert!(mentions(&manual, "data:delay:histogram"));
    for endpoint in [
        "/monitor",
        "/metrics",
        "/space",
        "terse=true",
        "format=json",
    ] {
        assert!(
            manual.contains(endpoint),
            "the manual does not name {endpoint}"
        );
    }
}

/// A monitor line's name with its host, code or folder replaced by the
/// placeholder the manual uses: net:outgoing:default:200 → net:outgoing:host:code.
fn generic_name(name: &str, folder: &str) -> String {
    let parts: Vec<&str> = name.split(':').collect();
    match parts.as_slice() {
        ["net", direction @ ("incoming" | "outgoing"), _host] => format!("net:{direction}:host"),
        ["net", "outgoing", _host, _code] => "net:outgoing:host:code".to_string(),
        _ if name.starts_with("folder:") => {
            let rest = name.trim_start_matches("folder:");
            let label = rest.rsplit_once(':').map(|(_, l)| l).unwrap_or("");
            let named = rest.trim_end_matches(label).trim_end_matches(':');
            assert!(!named.is_empty() || folder.is_empty(), "{name}");
            format!("folder:name:{label}")
        }
        _ => name.to_string(),
    }
}

/// The text of one `.SH` section.
fn section<'a>(manual: &'a str, name: &str) -> &'a str {
    let start = manual
        .find(&format!(".SH {name}\n"))
        .unwrap_or_else(|| panic!("no section {name}"));
    let rest = &manual[start + 4..];
    let end = rest.find("\n.SH ").map(|e| e + 1).unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn the_manual_has_every_section_and_lints_clean() {
    let manual = manual_text();
    for name in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "CONFIGURATION",
        "SEEKING",
        "THROTTLING",
        "MONITOR",
        "SIGNALS",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        section(&manual, name);
    }
    for page in ["runit(8)", "sv(8)", "svlogd(8)", "chpst(8)"] {
        let (name, number) = page.split_once('(').expect("page");
        let cited = format!("{name}({number}");
        assert!(
            section(&manual, "SEE ALSO").contains(&cited),
            "SEE ALSO lacks {page}"
        );
    }
    let path = format!("{}/man/loomiere.8", env!("CARGO_MANIFEST_DIR"));
    let lint = Command::new("mandoc")
        .args(["-Tlint", &path])
        .output()
        .expect("mandoc");
    let complaints =
        String::from_utf8_lossy(&lint.stdout).to_string() + &String::from_utf8_lossy(&lint.stderr);
    assert!(complaints.trim().is_empty(), "mandoc -Tlint:\n{complaints}");
    let groff = Command::new("groff")
        .args(["-man", "-ww", "-z", &path])
        .output()
        .expect("groff");
    let complaints = String::from_utf8_lossy(&groff.stderr).to_string();
    assert!(
        complaints.trim().is_empty(),
        "groff -man -ww -z:\n{complaints}"
    );
}
