//! The table walks of `tables` checked against its per-sample lookups.

use super::*;

/// A track with awkward tables: zero-count runs, several stsc runs, a
/// sparse stss and a ctts, checked by `index_and_check` like a parsed one.
fn track() -> Track {
    let run = |count, value| Run { count, value };
    let mut track = Track {
        id: 1,
        enabled: true,
        handler: *b"vide",
        timescale: 1000,
        sample_count: 40,
        stts: RunTable::from_runs(
            &[run(10, 40), run(0, 99), run(25, 33), run(5, 41)],
            Values::Durations,
        )
        .expect("stts"),
        ctts: Some((
            0,
            RunTable::from_runs(
                &[run(3, 80), run(0, 7), run(30, 0), run(7, 120)],
                Values::Offsets,
            )
            .expect("ctts"),
        )),
        sync: Some(vec![1, 2, 11, 12, 30, 40]),
        stsc: ChunkRunsAt { at: 48, count: 3 },
        stsc_first_sample: Vec::new(),
        sizes: Sizes::Decoded((0..40).map(|n| 100 + n * 7).collect()),
        moov: MoovBytes::new(tables(&CHUNK_OFFSETS)),
        chunk_offsets: ChunkOffsets {
            at: 0,
            count: 12,
            wide: false,
        },
        sdtp_at: None,
        chunks_in_order: true,
        edit: Edit::None,
        tkhd_duration: (0, 4),
        mdhd_duration: (0, 4),
    };
    index_and_check(&mut track).expect("consistent tables");
    let in_order = track.walk_steps(1.0, 1 << 20, |_, _| {});
    assert!(
        matches!(in_order, Ok(true)),
        "samples inside the file, in order"
    );
    track
}

/// The stco entries of the test track: 12 chunks 2 000 bytes apart.
const CHUNK_OFFSETS: [u32; 12] = {
    let mut offsets = [0; 12];
    let mut n = 0;
    while n < 12 {
        offsets[n] = 1_000 + 2_000 * n as u32;
        n += 1;
    }
    offsets
};

/// The test track's moov bytes: its stco entries (48 bytes from 0), then
/// its stsc entries (from 48): chunks 1-2 hold 4 samples, 3-6 one, 7-12 six.
fn tables(chunk_offsets: &[u32; 12]) -> Vec<u8> {
    let stsc = [[1, 4, 1], [3, 1, 1], [7, 6, 1]];
    chunk_offsets
        .iter()
        .chain(stsc.iter().flatten())
        .flat_map(|n: &u32| n.to_be_bytes())
        .collect()
}

#[test]
fn the_table_walks_agree_with_the_lookups_from_every_sample() {
    let track = track();
    let Some((_, ctts)) = &track.ctts else {
        panic!("ctts")
    };
    let sync = track.sync.as_ref().expect("stss");
    for from in 0..track.sample_count {
        let samples = from..track.sample_count;
        let durations: Vec<u32> = track
            .durations_from(from)
            .take(samples.clone().count())
            .collect();
        let looked_up: Vec<u32> = samples
            .clone()
            .map(|s| (track.time_of(s + 1) - track.time_of(s)) as u32)
            .collect();
        assert_eq!(durations, looked_up, "durations from {from}");
        let offsets: Vec<u32> = track
            .composition_offsets_from(from)
            .take(looked_up.len())
            .collect();
        let offsets_looked_up: Vec<u32> = samples
            .clone()
            .map(|s| ctts.get(track.ctts_run(s).0).map_or(0, |r| r.value))
            .collect();
        assert_eq!(
            offsets, offsets_looked_up,
            "composition offsets from {from}"
        );
        let flags: Vec<bool> = track.sync_flags_from(from).take(looked_up.len()).collect();
        let flags_looked_up: Vec<bool> = samples
            .map(|s| sync.binary_search(&((s + 1) as u32)).is_ok())
            .collect();
        assert_eq!(flags, flags_looked_up, "sync flags from {from}");
    }
}

#[test]
fn chunk_pieces_cut_any_range_where_its_chunks_end() {
    let track = track();
    for start in 0..track.sample_count {
        for end in start..=track.sample_count {
            let walked: Vec<(u64, u64, u64)> = track.chunk_pieces(start..end).collect();
            // The lookups, one chunk at a time.
            let mut looked_up = Vec::new();
            let mut s = start;
            while s < end {
                let (chunk, first) = track.chunk_of(s);
                let chunk_end = (first + track.samples_in_chunk(chunk).max(1))
                    .min(end)
                    .max(s + 1);
                looked_up.push((s, chunk_end - s, track.offset_of(s)));
                s = chunk_end;
            }
            assert_eq!(walked, looked_up, "samples {start}..{end}");
        }
    }
}

/// The same track with its sizes stored as stsz entries in a moov.
fn track_with_stored_sizes() -> Track {
    let mut track = track();
    let Sizes::Decoded(sizes) = &track.sizes else {
        panic!("decoded sizes")
    };
    // The same chunk offsets, now 64-bit, then a gap, then the sizes.
    let mut moov: Vec<u8> = (0..12u64)
        .flat_map(|n| (1_000 + n * 2_000).to_be_bytes())
        .collect();
    moov.extend([0xee; 12]);
    let at = moov.len();
    moov.extend(sizes.iter().flat_map(|size| size.to_be_bytes()));
    // The same stsc entries, after the sizes.
    let stsc_at = moov.len();
    let ChunkRunsAt { at: old_at, count } = track.stsc;
    moov.extend_from_slice(&track.moov[old_at..old_at + 12 * count]);
    track.sizes = Sizes::Stored { at };
    track.chunk_offsets.wide = true;
    track.stsc.at = stsc_at;
    track.moov = MoovBytes::new(moov);
    track
}

#[test]
fn stored_sizes_and_wide_chunk_offsets_read_as_the_others() {
    let (decoded, stored) = (track(), track_with_stored_sizes());
    for s in 0..=decoded.sample_count + 1 {
        assert_eq!(stored.size_of(s), decoded.size_of(s), "size of {s}");
        assert_eq!(
            stored.sizes_sum(s / 2..s),
            decoded.sizes_sum(s / 2..s),
            "sum to {s}"
        );
    }
    assert_eq!(stored.size_of(decoded.sample_count), 0, "past the table");
    for chunk in 0..=decoded.chunk_count() {
        assert_eq!(
            stored.chunk_offset(chunk),
            decoded.chunk_offset(chunk),
            "chunk {chunk}"
        );
        let (wide, narrow): (Vec<u64>, Vec<u64>) = (
            stored.chunk_offsets_in(chunk / 2..chunk + 1).collect(),
            decoded.chunk_offsets_in(chunk / 2..chunk + 1).collect(),
        );
        assert_eq!(wide, narrow, "chunks {}..{}", chunk / 2, chunk + 1);
    }
    assert_eq!(decoded.chunk_offset(12), 0, "past the table");
}

#[test]
fn chunks_are_walked_with_their_stsc_run_sample_counts() {
    for track in [track(), track_with_stored_sizes()] {
        chunk_walks_agree(&track);
    }
}

fn chunk_walks_agree(track: &Track) {
    let walked: Vec<(usize, u64)> = track.chunk_sample_counts().collect();
    let looked_up: Vec<(usize, u64)> = (0..track.chunk_count())
        .map(|chunk| (chunk, track.samples_in_chunk(chunk as u64)))
        .collect();
    assert_eq!(walked, looked_up);
    // Steps of a third of a sample's duration, of one, and of several.
    let tick = track.time_of(1).max(1) as f64;
    for step_ticks in [tick / 3.0, tick, 2.5 * tick] {
        let mut walked = Vec::new();
        track
            .walk_steps(step_ticks, 1 << 20, |step, reach| {
                walked.push((step, reach))
            })
            .expect("samples inside the file");
        let mut looked_up: Vec<(u64, u64)> = Vec::new();
        for s in 0..track.sample_count {
            let step = (track.time_of(s) as f64 / step_ticks) as u64;
            let end = track.offset_of(s) + track.size_of(s);
            match looked_up.last_mut() {
                Some((last, reach)) if *last == step => *reach = (*reach).max(end),
                _ => looked_up.push((step, end)),
            }
        }
        assert_eq!(walked, looked_up, "steps of {step_ticks} ticks");
    }
}

#[test]
fn the_timeline_walk_refuses_a_chunk_past_the_end_and_sees_overlapping_chunks() {
    let track = track();
    // Chunk 2 (samples 4-7: 128 + 135 + 142 + 149 bytes at 3 000) ends at 3 554.
    let walked = track.walk_steps(1.0, 3_500, |_, _| {});
    let message = match walked {
        Err(MediaError::Broken(message)) => message,
        other => panic!("a chunk past the end was accepted: {other:?}"),
    };
    assert_eq!(
        message,
        "track 1: chunk 2 at offset 3000 (554 bytes) runs past the end of the file (3500 bytes)"
    );
    // A chunk may end exactly at the end of the file: then the next fails.
    let walked = track.walk_steps(1.0, 3_554, |_, _| {});
    assert!(
        matches!(&walked, Err(MediaError::Broken(m)) if m.starts_with("track 1: chunk 3 at offset 5000")),
        "{walked:?}"
    );
    // Chunk 3 moved to start inside chunk 2: offsets still grow, but the
    // chunks overlap, so they are not in order.
    let mut overlapping = track;
    let mut offsets = CHUNK_OFFSETS;
    offsets[2] = 3_100;
    overlapping.moov = MoovBytes::new(tables(&offsets));
    assert!(matches!(
        overlapping.walk_steps(1.0, 1 << 20, |_, _| {}),
        Ok(false)
    ));
}
