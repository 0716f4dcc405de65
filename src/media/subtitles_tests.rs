use super::*;

fn vtt(srt: &str) -> String {
    srt_to_webvtt(srt.as_bytes()).expect("converts")
}

#[test]
fn a_plain_file_becomes_webvtt() {
    let srt =
        "1\n00:00:01,000 --> 00:00:04,500\nHello\nworld\n\n2\n00:00:05,250 --> 00:00:06,000\nBye\n";
    assert_eq!(
        vtt(srt),
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.500\nHello\nworld\n\n00:00:05.250 --> 00:00:06.000\nBye\n"
    );
}

#[test]
fn bom_crlf_and_lone_cr_are_read() {
    let srt = "\u{feff}1\r\n00:00:01,000 --> 00:00:02,000\r\nOne\r\n\r\n2\r00:00:03,000 --> 00:00:04,000\rTwo\r";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    assert_eq!(cues.len(), 2);
    assert_eq!(cues[0].text, "One");
    assert_eq!((cues[1].start_ms, cues[1].end_ms), (3000, 4000));
    assert!(!vtt(srt).contains('\r'));
    assert!(vtt(srt).starts_with("WEBVTT\n"));
}

#[test]
fn numbers_are_optional_and_a_missing_blank_line_starts_the_next_cue() {
    let srt = "00:00:01,000 --> 00:00:02,000\nNo number\n2\n00:00:03,000 --> 00:00:04,000\nNo blank line before\n00:00:05,000 --> 00:00:06,000\nNor here\n";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    let texts: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["No number", "No blank line before", "Nor here"]);
}

#[test]
fn a_number_in_the_text_stays_text() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nThe answer is\n42\n\n2\n00:00:03,000 --> 00:00:04,000\nRight\n";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    assert_eq!(cues[0].text, "The answer is\n42");
}

#[test]
fn hours_past_99_periods_and_short_fractions() {
    let srt = "1\n100:02:03.5 --> 100:02:04,25\nLate\n\n2\n01:02,000 --> 01:03,000\nMinutes only\n";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    let late = (100 * 3600 + 2 * 60 + 3) * 1000;
    assert_eq!(
        (cues[0].start_ms, cues[0].end_ms),
        (late + 500, late + 1250)
    );
    assert_eq!((cues[1].start_ms, cues[1].end_ms), (62_000, 63_000));
    assert!(vtt(srt).contains("100:02:03.500 --> 100:02:04.250"));
}

#[test]
fn coordinates_after_the_timing_are_ignored() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000 X1:100 X2:600 Y1:20 Y2:50\nPlaced\n";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    assert_eq!((cues[0].end_ms, cues[0].text.as_str()), (2000, "Placed"));
}

#[test]
fn overlapping_cues_are_kept_in_file_order() {
    let srt =
        "1\n00:00:01,000 --> 00:00:05,000\nLong\n\n2\n00:00:02,000 --> 00:00:03,000\nInside\n";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    assert_eq!(cues.len(), 2);
    assert_eq!(cues[1].start_ms, 2000);
}

#[test]
fn tags_are_kept_dropped_or_escaped() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000\n<I>Loud</I> & <font color=\"red\">red</font>\n{\\an8}Top a < b > c --> d\n";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    assert_eq!(
        cues[0].text,
        "<i>Loud</i> &amp; red\nTop a &lt; b &gt; c --&gt; d"
    );
}

#[test]
fn a_blank_line_inside_a_cue_keeps_its_text() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nFirst\n\nstill the first\n\n2\n00:00:03,000 --> 00:00:04,000\nSecond\n";
    let cues = parse_srt(srt.as_bytes()).expect("parses");
    assert_eq!(cues.len(), 2);
    assert_eq!(cues[0].text, "First\nstill the first");
}

#[test]
fn windows_1252_files_are_read() {
    let mut srt = b"1\n00:00:01,000 --> 00:00:02,000\n".to_vec();
    srt.extend_from_slice(b"Caf\xe9 \x93quoted\x94 \x80\n");
    let cues = parse_srt(&srt).expect("parses");
    assert_eq!(cues[0].text, "Café “quoted” €");
}

#[test]
fn garbage_is_refused_with_its_line() {
    let refused = |srt: &[u8]| parse_srt(srt).expect_err("refused");
    assert_eq!(refused(b"").reason, "no cue in the file");
    assert_eq!(refused(b"\n\n\n").reason, "no cue in the file");
    let e = refused(b"\nThis is a letter, not subtitles.\n");
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("timing line"), "{e}");
    let e =
        refused(b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:61,000 --> 00:01:02,000\nbad\n");
    assert_eq!(e.line, 6);
    assert!(e.reason.contains("start"), "{e}");
    let e = refused(b"1\n00:00:05,000 --> 00:00:02,000\nbackwards\n");
    assert_eq!((e.line, e.reason), (2, "the cue ends before it starts"));
    let e = refused(b"1\n00:00:01,000 --> 00:00:02,000\nok\n\x00\x01\x02binary\n");
    assert_eq!(e.line, 4);
    assert_eq!(
        refused(b"1\n00:00:01,0000 --> 00:00:02,000\nfour digits\n").line,
        2
    );
    assert_eq!(
        refused(b"1\n9999999:00:00,000 --> 9999999:00:01,000\nx\n").line,
        2
    );
}

#[test]
fn an_empty_cue_is_written_without_a_text_line() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\nText\n";
    assert_eq!(
        vtt(srt),
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n00:00:03.000 --> 00:00:04.000\nText\n"
    );
}

#[test]
fn a_line_of_dropped_tags_leaves_no_blank_line() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nA\n<font color=red></font>\nB\n";
    assert_eq!(vtt(srt), "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nA\nB\n");
}

#[test]
fn webvtt_sidecars_are_checked_and_get_a_timestamp_map() {
    let text = check_webvtt(b"\xEF\xBB\xBFWEBVTT - a film\n\n00:01.000 --> 00:02.000\nhi\n")
        .expect("valid");
    assert!(text.starts_with("WEBVTT - a film\n"), "{text}");
    let mapped = with_timestamp_map(&text);
    assert!(
        mapped.starts_with(
            "WEBVTT - a film\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n00:01.000"
        ),
        "{mapped}"
    );
    // A file that has one keeps it.
    let own = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n";
    assert_eq!(with_timestamp_map(own), own);
    assert_eq!(
        check_webvtt(b"WEBVTTX\n").expect_err("no signature").line,
        1
    );
    assert_eq!(
        check_webvtt(b"1\n00:00:01,000 --> 00:00:02,000\n")
            .expect_err("srt")
            .line,
        1
    );
    assert_eq!(
        check_webvtt(b"WEBVTT\n\nok\n\xff\xfe\n")
            .expect_err("not utf-8")
            .line,
        4
    );
    assert_eq!(
        check_webvtt(b"WEBVTT\n\n\x01\n").expect_err("binary").line,
        3
    );
}
