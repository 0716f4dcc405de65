//! Seeking into FLV: by byte and by time, with and without keyframe
//! metadata, H.264/AAC sequence headers re-sent, Range on a seeked body.

mod common;

use common::{Server, decode_cleanly, ensure_fixtures, media_folder, probe};
use loomiere::media::FileSource;
use loomiere::media::flv;

fn server() -> Server {
    ensure_fixtures();
    Server::start(&["-f", media_folder().to_str().expect("utf8"), "-w", "2"])
}

fn keyframes(path: &str) -> (Vec<u8>, flv::FlvIndex) {
    let file = std::fs::File::open(media_folder().join(path)).expect("fixture");
    let bytes = std::fs::read(media_folder().join(path)).expect("fixture");
    let index = flv::index(&FileSource {
        file: &file,
        size: bytes.len() as u64,
        name: "test",
    })
    .expect("index");
    (bytes, index)
}

#[test]
fn a_byte_seek_on_sorenson_mp3_is_the_header_then_the_keyframe_tag() {
    let server = server();
    let (file, index) = keyframes("generated/spark.flv");
    assert!(index.from_metadata, "spark.flv carries a keyframe index");
    assert!(
        index.sequence_headers.is_empty(),
        "Sorenson Spark and MP3 need no codec headers"
    );
    let keyframe = index.seek_points[4].offset;
    let response = server.get(&format!("/generated/spark.flv?start={keyframe}"), &[]);
    assert_eq!(response.status, 200);
    let mut expected = b"FLV\x01".to_vec();
    expected.push(file[4]);
    expected.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 0]);
    expected.extend_from_slice(&file[keyframe as usize..]);
    assert_eq!(response.body.len(), expected.len());
    assert!(
        response.body == expected,
        "body is the 13-byte header and the file from the keyframe"
    );
    assert_eq!(response.body[13], 9, "the first tag is video");
    assert_eq!(response.body[24] >> 4, 1, "and a keyframe");
    let target = format!(
        "http://127.0.0.1:{}/generated/spark.flv?start={keyframe}",
        server.port
    );
    decode_cleanly(&target).expect("decodes");
}

#[test]
fn an_h264_seek_resends_both_sequence_headers_then_the_keyframe() {
    let server = server();
    // sample.flv has no keyframe metadata: the index comes from a scan.
    let (file, index) = keyframes("sample.flv");
    assert!(!index.from_metadata);
    assert_eq!(index.sequence_headers.len(), 2);
    let keyframe = &index.seek_points[2];
    let response = server.get(
        &format!("/sample.flv?start={}&units=bytes", keyframe.offset),
        &[],
    );
    assert_eq!(response.status, 200);
    let body = &response.body;
    assert_eq!(
        &body[..13],
        &[b'F', b'L', b'V', 1, file[4], 0, 0, 0, 9, 0, 0, 0, 0]
    );
    // Tag 1: the AVC sequence header; tag 2: the AAC sequence header; both at the keyframe's time.
    let tag_len = |at: usize| {
        11 + u32::from_be_bytes([0, body[at + 1], body[at + 2], body[at + 3]]) as usize + 4
    };
    let timestamp =
        |at: usize| u32::from_be_bytes([body[at + 7], body[at + 4], body[at + 5], body[at + 6]]);
    let (first, second) = (13, 13 + tag_len(13));
    assert_eq!(
        (body[first], body[first + 11], body[first + 12]),
        (9, 0x17, 0),
        "AVC sequence header"
    );
    assert_eq!(
        (body[second], body[second + 11] >> 4, body[second + 12]),
        (8, 10, 0),
        "AAC sequence header"
    );
    let expected_ms = (keyframe.seconds * 1000.0).round() as u32;
    assert_eq!(
        (timestamp(first), timestamp(second)),
        (expected_ms, expected_ms)
    );
    let rest = second + tag_len(second);
    assert_eq!(
        &body[rest..],
        &file[keyframe.offset as usize..],
        "then the file from the keyframe's tag"
    );
    assert_eq!(
        response
            .header("Content-Length")
            .and_then(|v| v.parse().ok()),
        Some(body.len())
    );
    let target = format!(
        "http://127.0.0.1:{}/sample.flv?start={}&units=bytes",
        server.port, keyframe.offset
    );
    decode_cleanly(&target).expect("decodes with no error");
}

#[test]
fn time_seeks_start_at_the_keyframe_and_stop_at_one() {
    let server = server();
    for path in ["generated/indexed.flv", "sample.flv", "generated/spark.flv"] {
        let target = format!("http://127.0.0.1:{}/{path}?start=2.5", server.port);
        let p = probe(&target).unwrap_or_else(|e| panic!("{path}: {e}"));
        let video_start = p.stream("video").expect("video").2;
        assert!(
            (1.95..2.2).contains(&video_start),
            "{path}: video starts at {video_start}"
        );
        decode_cleanly(&target).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let window = format!(
        "http://127.0.0.1:{}/generated/indexed.flv?start=2&stop=5",
        server.port
    );
    let p = probe(&window).expect("probe");
    assert!(
        (p.span() - 3.0).abs() < 0.1,
        "start=2&stop=5 covers the keyframes 2 to 5: {p:?}"
    );
    decode_cleanly(&window).expect("decodes");
    let past = server.get("/generated/indexed.flv?start=99", &[]);
    assert_eq!(past.status, 400);
}

#[test]
fn a_range_on_a_seeked_flv_counts_in_the_seeked_body() {
    let server = server();
    let (_, index) = keyframes("sample.flv");
    let path = format!("/sample.flv?start={}", index.seek_points[1].offset);
    let full = server.get(&path, &[]);
    let range = server.get(&path, &["Range: bytes=0-9"]);
    assert_eq!(range.status, 206);
    assert_eq!(
        range.header("Content-Range"),
        Some(format!("bytes 0-9/{}", full.body.len()).as_str())
    );
    assert_eq!(range.body, full.body[..10].to_vec());
    let across = server.get(&path, &["Range: bytes=40-5000"]);
    assert_eq!(across.body, full.body[40..5001].to_vec());
}

#[test]
fn a_file_that_is_not_flv_is_a_500_only_when_seeked() {
    let server = server();
    let seeked = server.get("/generated/not-flv.flv?start=1", &[]);
    assert_eq!(seeked.status, 500);
    assert!(server.wait_for_log(
        "not-flv.flv: FLV header: no 'FLV' signature",
        std::time::Duration::from_secs(5)
    ));
    assert_eq!(server.get("/generated/not-flv.flv", &[]).status, 200);
}
