use super::*;

fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

fn full(kind: &[u8; 4], version: u8, flags: u32, fields: &[u32]) -> Vec<u8> {
    let mut payload = (u32::from(version) << 24 | flags).to_be_bytes().to_vec();
    for field in fields {
        payload.extend_from_slice(&field.to_be_bytes());
    }
    boxed(kind, &payload)
}

fn moof(trafs: &[Vec<u8>]) -> Vec<u8> {
    let mut payload = full(b"mfhd", 0, 0, &[1]);
    for traf in trafs {
        payload.extend_from_slice(&boxed(b"traf", traf));
    }
    boxed(b"moof", &payload)
}

const VIDEO: TrackDefaults = TrackDefaults {
    track_id: 1,
    description: 1,
    duration: 512,
    size: 0,
    flags: NON_SYNC,
};
const AUDIO: TrackDefaults = TrackDefaults {
    track_id: 2,
    description: 1,
    duration: 1024,
    size: 100,
    flags: 0,
};

#[test]
fn runs_take_the_trex_and_tfhd_defaults_and_first_sample_flags() {
    // Video: base is the moof (default-base-is-moof), three samples with
    // sizes and signed composition offsets, the first a keyframe.
    let mut video = full(b"tfhd", 0, BASE_IS_MOOF, &[1]);
    video.extend(full(b"tfdt", 1, 0, &[0, 1024]));
    video.extend(full(
        b"trun",
        1,
        DATA_OFFSET | FIRST_SAMPLE_FLAGS | SAMPLE_SIZE | SAMPLE_COMPOSITION,
        &[3, 200, 0, 10, 1024, 20, (-512i32) as u32, 30, 0],
    ));
    // Audio: no base offset, so it follows the video's data; default size.
    let mut audio = full(b"tfhd", 0, DEFAULT_DURATION, &[2, 2048]);
    audio.extend(full(b"trun", 0, 0, &[2]));
    let bytes = moof(&[video, audio]);
    let found = read_moof(&bytes, 1000, &[VIDEO, AUDIO]).expect("moof");
    assert_eq!(found.len(), 2);
    let v = &found[0];
    assert_eq!(
        (v.track_id, v.decode_time, v.has_composition),
        (1, Some(1024), true)
    );
    let got: Vec<_> = v
        .samples
        .iter()
        .map(|s| (s.offset, s.size, s.duration, s.composition, s.sync))
        .collect();
    assert_eq!(
        got,
        vec![
            (1200, 10, 512, 1024, true),
            (1210, 20, 512, -512, false),
            (1230, 30, 512, 0, false),
        ]
    );
    let a = &found[1];
    let got: Vec<_> = a
        .samples
        .iter()
        .map(|s| (s.offset, s.size, s.duration, s.sync))
        .collect();
    assert_eq!(got, vec![(1260, 100, 2048, true), (1360, 100, 2048, true)]);
}

#[test]
fn an_explicit_base_offset_and_runs_that_follow_each_other() {
    let mut traf = full(
        b"tfhd",
        0,
        BASE_DATA_OFFSET | DEFAULT_SIZE,
        &[2, 0, 5000, 7],
    );
    traf.extend(full(b"trun", 0, 0, &[1]));
    traf.extend(full(b"trun", 0, 0, &[1]));
    let found = read_moof(&moof(&[traf]), 0, &[AUDIO]).expect("moof");
    let offsets: Vec<_> = found[0].samples.iter().map(|s| s.offset).collect();
    assert_eq!(offsets, vec![5000, 5007]);
}

#[test]
fn a_sync_sample_group_marks_keyframes() {
    let mut traf = full(b"tfhd", 0, BASE_IS_MOOF | DEFAULT_SIZE, &[1, 10]);
    traf.extend(full(b"trun", 0, 0, &[4]));
    let mut sbgp = (0u32).to_be_bytes().to_vec();
    sbgp.extend_from_slice(b"sync");
    for field in [3u32, 2, 0, 1, 0x10001, 1, 0x10001] {
        sbgp.extend_from_slice(&field.to_be_bytes());
    }
    traf.extend(boxed(b"sbgp", &sbgp));
    let found = read_moof(&moof(&[traf]), 0, &[VIDEO]).expect("moof");
    let sync: Vec<_> = found[0].samples.iter().map(|s| s.sync).collect();
    assert_eq!(sync, vec![false, false, true, true]);
}

#[test]
fn damaged_fragments_are_errors_that_say_where() {
    let unknown = moof(&[full(b"tfhd", 0, 0, &[9])]);
    let error = read_moof(&unknown, 77, &[VIDEO]).expect_err("unknown track");
    assert!(error.to_string().contains("offset 77"), "{error}");
    assert!(error.to_string().contains("track 9"), "{error}");

    // A trun that claims more samples than it holds.
    let mut traf = full(b"tfhd", 0, 0, &[1]);
    traf.extend(full(b"trun", 0, SAMPLE_SIZE, &[1000, 1, 2]));
    let error = read_moof(&moof(&[traf]), 0, &[VIDEO]).expect_err("short trun");
    assert!(error.to_string().contains("claims 1000 samples"), "{error}");

    // A data offset before the start of the file.
    let mut traf = full(b"tfhd", 0, BASE_IS_MOOF, &[1]);
    traf.extend(full(b"trun", 0, DATA_OFFSET, &[1, (-5000i32) as u32]));
    assert!(read_moof(&moof(&[traf]), 100, &[VIDEO]).is_err());

    // Encrypted samples are refused as unsupported, not as damage.
    let mut traf = full(b"tfhd", 0, 0, &[1]);
    traf.extend(full(b"senc", 0, 0, &[0]));
    assert!(matches!(
        read_moof(&moof(&[traf]), 0, &[VIDEO]),
        Err(MediaError::Unsupported(_))
    ));

    // A box size past the moof's end.
    let mut bytes = moof(&[full(b"tfhd", 0, 0, &[1])]);
    let at = bytes.len() - 16;
    bytes[at..at + 4].copy_from_slice(&1000u32.to_be_bytes());
    assert!(read_moof(&bytes, 0, &[VIDEO]).is_err());
}

#[test]
fn trex_defaults_are_read_per_track() {
    let mut mvex = full(b"mehd", 0, 0, &[0]);
    mvex.extend(full(b"trex", 0, 0, &[1, 1, 512, 0, NON_SYNC]));
    mvex.extend(full(b"trex", 0, 0, &[2, 1, 1024, 100, 0]));
    let moov = boxed(b"mvex", &mvex);
    let tree = super::super::boxes::parse_tree(&boxed(b"moov", &moov), 0).expect("tree");
    let moov_bytes = boxed(b"moov", &moov);
    let mvex_node = tree.child(b"mvex").expect("mvex");
    let defaults = track_defaults(mvex_node, &moov_bytes).expect("trex");
    assert_eq!(defaults, vec![VIDEO, AUDIO]);
}
