//! Requests that try to leave the served folder are refused in every spelling.

mod common;

use common::{Response, Server, TempDir};

#[test]
fn traversal_attempts_are_all_refused() {
    let outside = TempDir::new("outside");
    outside.write("secret.mp4", b"TOP-SECRET");
    let dir = TempDir::new("sandbox");
    dir.write("public/ok.mp4", b"fine");
    std::os::unix::fs::symlink(
        outside.path().join("secret.mp4"),
        dir.path().join("escape.mp4"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("outdir")).expect("symlink");
    std::os::unix::fs::symlink("public/ok.mp4", dir.path().join("inside.mp4")).expect("symlink");
    let server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "1"]);
    let relative_secret = format!(
        "{}/secret.mp4",
        outside
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
    );
    let attempts = [
        format!("/../{relative_secret}"),
        format!("/public/../../{relative_secret}"),
        format!("/%2e%2e/{relative_secret}"),
        format!("/%2E%2E/{relative_secret}"),
        format!("/public%2f..%2f..%2f{relative_secret}"),
        format!("/..%5c{relative_secret}"),
        format!("/..\\{relative_secret}"),
        "/public/ok.mp4%00.txt".to_string(),
        "/escape.mp4".to_string(),
        "/outdir/secret.mp4".to_string(),
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd".to_string(),
        "/../../../../etc/passwd".to_string(),
    ];
    for attempt in &attempts {
        let request = format!("GET {attempt} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let raw = server.raw(request.as_bytes());
        let response = Response::parse(&raw, false).expect("response");
        assert!(
            matches!(response.status, 400 | 403 | 404),
            "{attempt} got {}",
            response.status
        );
        assert!(
            !String::from_utf8_lossy(&raw).contains("TOP-SECRET"),
            "{attempt} leaked the file"
        );
        assert!(
            !String::from_utf8_lossy(&raw).contains("root:"),
            "{attempt} leaked /etc/passwd"
        );
    }
    assert_eq!(
        server.get("/escape.mp4", &[]).status,
        403,
        "a symlink out of the folder is forbidden"
    );
    // Symlinks that stay inside the folder are fine.
    let inside = server.get("/inside.mp4", &[]);
    assert_eq!(inside.status, 200);
    assert_eq!(inside.body, b"fine");
    assert_eq!(server.get("/public/ok.mp4", &[]).body, b"fine");
    assert_eq!(server.get("/public//./ok.mp4", &[]).body, b"fine");
}

#[test]
fn the_open_file_cache_never_serves_a_changed_file() {
    let outside = TempDir::new("cache-outside");
    outside.write("secret.mp4", b"TOP-SECRET");
    let dir = TempDir::new("cache");
    let path = dir.write("clip.mp4", b"first version");
    let server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "1"]);
    for _ in 0..3 {
        assert_eq!(server.get("/clip.mp4", &[]).body, b"first version");
    }
    // Rewritten in place with the same size.
    std::fs::write(&path, b"second versio").expect("rewrite");
    assert_eq!(server.get("/clip.mp4", &[]).body, b"second versio");
    // Replaced by rename (a new inode).
    let staged = dir.write("staged.tmp", b"third");
    std::fs::rename(&staged, &path).expect("rename");
    assert_eq!(server.get("/clip.mp4", &[]).body, b"third");
    // Replaced by a symlink that leaves the folder.
    std::fs::remove_file(&path).expect("remove");
    std::os::unix::fs::symlink(outside.path().join("secret.mp4"), &path).expect("symlink");
    let response = server.get("/clip.mp4", &[]);
    assert_eq!(response.status, 403);
    assert!(!String::from_utf8_lossy(&response.body).contains("TOP-SECRET"));
    // Removed.
    std::fs::remove_file(&path).expect("remove");
    assert_eq!(server.get("/clip.mp4", &[]).status, 404);
}
