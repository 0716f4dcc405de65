//! `loomiere -t` and the command line: exact messages and exit codes.

mod common;

use std::process::{Command, Output};

use common::{BINARY, TempDir, options_file};

fn run(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run loomiere")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_string()
}

fn check(dir: &TempDir, script: &str) -> (i32, String, String) {
    let path = options_file(dir, script);
    let output = run(&["-t", "-o", path.to_str().expect("utf8")]);
    (
        output.status.code().expect("exit code"),
        text(&output.stdout),
        text(&output.stderr),
    )
}

#[test]
fn a_good_file_is_ok() {
    let dir = TempDir::new("opt-good");
    let script = format!(
        "options.port = 8090\noptions.root = false\noptions.workers = options.cpus\noptions.throttle = 10\n\
         options.hosts['^video%.example$'] = {{ folder = '{0}' }}\noptions.hosts[''] = {{ folder = '{0}', routes = {{}} }}\n\
         options.mimes['video/x-test'] = 'tst, tst2'\n",
        dir.path().display()
    );
    let path = options_file(&dir, &script);
    let (code, stdout, stderr) = check(&dir, &script);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, format!("options {}: ok", path.display()).as_str(), "")
    );
}

#[test]
fn each_kind_of_bad_file_is_reported_with_its_place() {
    let dir = TempDir::new("opt-bad");
    let path = dir.path().join("options.lua");
    let p = path.display();
    let folder = dir.path().display();
    let cases = [
        (
            "options.port = 80\noptions.prot = 81\n".to_string(),
            format!("options {p}: {p}:2: unknown option 'prot'"),
        ),
        (
            "options.port = 'eighty'\n".to_string(),
            format!("options {p}: {p}:1: option 'port' must be a number, not a string"),
        ),
        (
            "options.port = \n".to_string(),
            format!("options {p}: {p}:2: unexpected symbol near '<eof>'"),
        ),
        (
            "error('boom')\n".to_string(),
            format!("options {p}: {p}:1: boom"),
        ),
        (
            "options.workers = 0\n".to_string(),
            format!("options {p}: option 'workers' must be a whole number from 1 to 512, not 0"),
        ),
        (
            "options.port = 1.5\n".to_string(),
            format!("options {p}: option 'port' must be a whole number from 0 to 65535, not 1.5"),
        ),
        (
            "options.hosts[''] = { folder = '/no/such/folder' }\n".to_string(),
            format!(
                "options {p}: option 'hosts['']' folder /no/such/folder cannot be used: No such file or directory (os error 2)"
            ),
        ),
        (
            format!("options.hosts['(unclosed'] = {{ folder = '{folder}' }}\n"),
            format!(
                "options {p}: option 'hosts['(unclosed']' pattern does not compile: PCRE2: error compiling pattern at offset 9: missing closing parenthesis"
            ),
        ),
        (
            "options.hosts[''] = { folder = 5 }\n".to_string(),
            format!("options {p}: {p}:1: options.hosts[''].folder must be a string, not a number"),
        ),
        (
            "options.bind = 'nowhere'\n".to_string(),
            format!("options {p}: option 'bind' 'nowhere' is not '*' or an IP address"),
        ),
        (
            "options.cpus = 4\n".to_string(),
            format!("options {p}: {p}:1: option 'cpus' is read-only"),
        ),
        (
            "options.stall_timeout = 1\n".to_string(),
            format!(
                "options {p}: option 'stall_timeout' must be a number of seconds from 2 to 3600, not 1"
            ),
        ),
        (
            "options.stall_timeout = '10'\n".to_string(),
            format!("options {p}: {p}:1: option 'stall_timeout' must be a number, not a string"),
        ),
        (
            "options.port = 8080\nwhile true do end\n".to_string(),
            format!(
                "options {p}: {p}:2: the instruction limit (100000000 instructions for options.lua) was reached"
            ),
        ),
        (
            "local co = coroutine.create(print)\n".to_string(),
            format!("options {p}: {p}:1: attempt to index global 'coroutine' (a nil value)"),
        ),
        (
            "options.seek = 'fast'\n".to_string(),
            format!("options {p}: option 'seek' must be 'keyframe' or 'exact', not 'fast'"),
        ),
        (
            "options.period = 0.01\n".to_string(),
            format!(
                "options {p}: option 'period' must be a number of seconds from 0.05 to 60, not 0.01"
            ),
        ),
        (
            "options.throttle = -1\n".to_string(),
            format!(
                "options {p}: option 'throttle' must be a number of seconds from 0 (off) to 86400, not -1"
            ),
        ),
        (
            "options.rate = '10 kb'\n".to_string(),
            format!(
                "options {p}: option 'rate' '10 kb' is not a size like 204800, '200k', '1m' or '2g'"
            ),
        ),
        (
            "options.rate = 100\n".to_string(),
            format!(
                "options {p}: option 'rate' must be 0 (off) or at least 1k bytes per second, not 100"
            ),
        ),
        (
            format!("options.hosts['^a'] = {{ folder = '{folder}', send_timeout = 0 }}\n"),
            format!(
                "options {p}: option 'hosts['^a'].send_timeout' must be a number of seconds from 0.1 to 86400, not 0"
            ),
        ),
        (
            format!("options.hosts['^a'] = {{ folder = '{folder}', rate_after = '1x' }}\n"),
            format!(
                "options {p}: option 'hosts['^a'].rate_after' '1x' is not a size like 204800, '200k', '1m' or '2g'"
            ),
        ),
        (
            format!("options.hosts['^a'] = {{ folder = '{folder}', throttle = 'lots' }}\n"),
            format!(
                "options {p}: {p}:1: options.hosts['^a'].throttle must be a number, not a string"
            ),
        ),
        (
            format!("options.hosts['x'] = {{ folder = '{folder}', folders = {{ '{folder}' }} }}\n"),
            format!("options {p}: {p}:1: options.hosts['x'] has both folder and folders; give one"),
        ),
        (
            "options.hosts['x'] = { folders = {} }\n".to_string(),
            format!(
                "options {p}: {p}:1: options.hosts['x'].folders must be a list like {{ '/srv/a', '/srv/b' }}"
            ),
        ),
        (
            "options.lua_instructions = 10\n".to_string(),
            format!(
                "options {p}: option 'lua_instructions' must be a whole number from 1000 to 1000000000, not 10"
            ),
        ),
        (
            "options.lua_memory = '100k'\n".to_string(),
            format!("options {p}: option 'lua_memory' must be at least '1m'"),
        ),
        (
            "options.root_token = 'short'\n".to_string(),
            format!(
                "options {p}: option 'root_token' must be at least 16 printable characters without spaces (or '' for none)"
            ),
        ),
        (
            "options.user = 'no-such-account-here'\n".to_string(),
            String::new(),
        ),
    ];
    for (script, expected) in cases {
        let (code, stdout, stderr) = check(&dir, &script);
        if expected.is_empty() {
            // An explicit account that does not exist only matters when started as root.
            // SAFETY: geteuid cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                assert_eq!(code, 1, "{script}");
                assert_eq!(
                    stderr,
                    format!(
                        "options {p}: option 'user' account 'no-such-account-here' does not exist"
                    )
                );
            }
            continue;
        }
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (1, "", expected.as_str()),
            "script: {script}"
        );
    }
}

#[test]
fn a_missing_options_file_is_an_error() {
    let output = run(&["-t", "-o", "/no/such/options.lua"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "options /no/such/options.lua: cannot read /no/such/options.lua: No such file or directory (os error 2)"
    );
}

#[test]
fn flags_override_and_are_checked() {
    let dir = TempDir::new("opt-flags");
    let output = run(&[
        "-t",
        "-f",
        dir.path().to_str().expect("utf8"),
        "-p",
        "0",
        "-w",
        "3",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).ends_with(": ok"));
    let bad = run(&["-t", "-w", "many"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).starts_with("loomiere: --workers: 'many' is not a valid number"));
}

#[test]
fn unknown_flags_print_usage_and_exit_2() {
    let output = run(&["--frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("loomiere: Unrecognized option: 'frobnicate'"),
        "{stderr}"
    );
    assert!(stderr.contains("Usage: loomiere [options]"));
    let stray = run(&["stray"]);
    assert_eq!(stray.status.code(), Some(2));
}

#[test]
fn help_and_version() {
    let help = run(&["-h"]);
    assert_eq!(help.status.code(), Some(0));
    for flag in [
        "--options",
        "--test",
        "--bind",
        "--port",
        "--root",
        "--workers",
        "--folder",
        "--throttle",
        "--cache",
        "--clients",
        "--help",
        "--version",
    ] {
        assert!(text(&help.stdout).contains(flag), "help lacks {flag}");
    }
    let version = run(&["--version"]);
    assert_eq!(
        text(&version.stdout),
        format!("loomiere {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_packaged_options_file_is_valid() {
    let dir = TempDir::new("opt-packaged");
    let packaged = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/etc/loomiere/options.lua"
    ))
    .expect("etc/loomiere/options.lua");
    // /var/www may not exist on a test machine; point the catch-all at a folder that does.
    let script = packaged.replace("'/var/www'", &format!("'{}'", dir.path().display()));
    assert_ne!(script, packaged, "the packaged file serves /var/www");
    let (code, stdout, stderr) = check(&dir, &script);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.ends_with(": ok"));
}

#[test]
fn access_options_are_checked_with_the_host_and_key_named() {
    let dir = TempDir::new("opt-access");
    let folder = dir.path().display().to_string();
    let host = |keys: &str| format!("options.hosts['^v$'] = {{ folder = '{folder}', {keys} }}\n");
    let cases = [
        (
            host("allow = { '10.0.0.0/8', '10.0.0.300' }"),
            "option 'hosts['^v$'].allow[2]' '10.0.0.300' is not an address or a block like '10.0.0.0/8'",
        ),
        (
            host("deny = '10.0.0.1'"),
            "hosts['^v$'].deny must be a table, not a string",
        ),
        (
            host("referers = { '(' }"),
            "option 'hosts['^v$'].referers[1]' does not compile",
        ),
        (
            host("secret = 'short'"),
            "option 'hosts['^v$'].secret' must be at least 16 characters",
        ),
        (
            host("countries = { allow = { 'RO' } }"),
            "option 'hosts['^v$'].countries' needs options.geoip",
        ),
        (
            host("countries = { allow = { 'Romania' } }"),
            "option 'hosts['^v$'].countries.allow' 'Romania' is not a two-letter ISO 3166 country code",
        ),
        (
            host("expires = { ['video'] = 60 }"),
            "option 'hosts['^v$'].expires['video']' is not a mime pattern",
        ),
        (
            host("cors = 5"),
            "hosts['^v$'].cors must be a string|table, not a number",
        ),
        (
            format!("options.geoip = '{folder}/missing.mmdb'\n"),
            "option 'geoip' ",
        ),
        (
            "options.limits = { per_ip = -1 }\n".to_string(),
            "option 'limits.per_ip' must be from 0 to 1000000, not -1",
        ),
        (
            "options.limits = { per_ip = 5, exempt = { 'nope' } }\n".to_string(),
            "option 'limits.exempt[1]' 'nope' is not an address",
        ),
        (
            "options.limits = { perip = 5 }\n".to_string(),
            "option 'limits' has an unknown key 'perip'",
        ),
    ];
    for (script, expected) in cases {
        let (code, _, stderr) = check(&dir, &script);
        assert_eq!(code, 1, "{script}");
        assert!(stderr.contains(expected), "{script}\n{stderr}");
    }
}

#[test]
fn sign_prints_a_link_for_the_chosen_host() {
    let dir = TempDir::new("opt-sign");
    let folder = dir.path().display().to_string();
    let path = options_file(
        &dir,
        &format!(
            "options.hosts['^a$'] = {{ folder = '{folder}', secret = 'aaaaaaaaaaaaaaaaaaaa' }}\n\
             options.hosts['^b$'] = {{ folder = '{folder}', secret = 'bbbbbbbbbbbbbbbbbbbb', token_ip = true }}\n"
        ),
    );
    let path = path.to_str().expect("utf8");
    let ambiguous = run(&["-o", path, "--sign", "/x.mp4", "--expires", "60"]);
    assert_eq!(ambiguous.status.code(), Some(2));
    assert!(text(&ambiguous.stderr).contains("several hosts have a secret"));
    let needs_ip = run(&[
        "-o",
        path,
        "--sign",
        "/x.mp4",
        "--expires",
        "60",
        "--host",
        "b",
    ]);
    assert!(text(&needs_ip.stderr).contains("give --ip ADDR"));
    let a = run(&[
        "-o",
        path,
        "--sign",
        "/x y.mp4",
        "--expires",
        "60",
        "--host",
        "a",
    ]);
    let url = text(&a.stdout);
    assert!(url.starts_with("/x%20y.mp4?expires="), "{url}");
    let token = url.split("token=").nth(1).expect("token");
    assert_eq!(token.len(), 64);
}
