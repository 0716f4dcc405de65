//! The MP4 seek rewrite on a real film with random start, stop and mode:
//! the output (generated header + the file's range) must index again with
//! our parser, with exactly the samples the plan keeps in each track.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use loomiere::media::mp4::{self, Mp4Index};
use loomiere::media::{Seek, SeekMode, Units};

/// The film, and the same fragmented (one moof a keyframe, issue 24): its
/// seeks are planned from the tables its fragments became.
const FILMS: [&[u8]; 2] = [
    include_bytes!("../../tests/media/sample.mp4"),
    include_bytes!("../../tests/media/sample_frag.mp4"),
];

thread_local! {
    static INDEXES: [Rc<Mp4Index>; 2] =
        FILMS.map(|film| Rc::new(mp4::index(film).expect("the fixture indexes")));
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let number = |bytes: &[u8]| f64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])) / 1e5;
    let (start, stop) = (number(&data[0..4]), number(&data[4..8]));
    let mode = if data[8] & 1 == 0 { SeekMode::Keyframe } else { SeekMode::Exact };
    let units = if data[8] & 2 == 0 { Units::Seconds } else { Units::Bytes };
    let seek = Seek { start, stop, units };
    // Bit 2 of the mode byte picks the fragmented film.
    let film = usize::from(data[8] & 4 != 0);
    let (index, film_bytes) = (INDEXES.with(|all| Rc::clone(&all[film])), FILMS[film]);
    let Ok(landing) = mp4::seek::land(&index, &seek, mode) else { return };
    let Ok(prepared) = mp4::seek::prepare_landing(&index, &landing) else { return };
    assert!(prepared.file_start <= prepared.file_end && prepared.file_end <= film_bytes.len() as u64);
    let mut body = Vec::new();
    prepared.prefix.write(0, prepared.prefix.len(), &mut body);
    body.extend_from_slice(&film_bytes[prepared.file_start as usize..prepared.file_end as usize]);
    assert_eq!(body.len() as u64, prepared.len());
    let again = mp4::index(&body[..]).expect("the seeked output indexes again");
    let kept: Vec<u64> = mp4::seek::kept_samples(&index, &landing)
        .into_iter()
        .filter(|&n| n > 0)
        .collect();
    let found: Vec<u64> = again.tracks.iter().map(|t| t.sample_count).collect();
    assert_eq!(found, kept, "start={start} stop={stop} {mode:?} {units:?}");
});
