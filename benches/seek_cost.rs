//! Measures the CPU cost of preparing MP4 seeks and generating their first
//! 64 KiB, and of packaging the file as HLS/DASH (the plan, the playlists,
//! a segment's head).
//!   cargo bench --bench seek_cost -- FILE.mp4   (e.g. target/bench-media/hour.mp4 from benches/seek.sh)
use std::rc::Rc;
use std::time::Instant;

use loomiere::media::{FileSource, Seek, SeekMode, Units, mp4};
use loomiere::package::{self, Name, plan};

fn main() {
    let path = std::env::args().nth(1).expect("usage: seek_cost FILE.mp4");
    let file = std::fs::File::open(&path).expect("open");
    let size = file.metadata().expect("stat").len();
    // INDEX_ROUNDS=N: index the file N times and print the mean only (to profile it).
    if let Some(rounds) = std::env::var("INDEX_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        let started = Instant::now();
        for _ in 0..rounds {
            mp4::index(&FileSource {
                file: &file,
                size,
                name: "hour.mp4",
            })
            .expect("index");
        }
        println!(
            "index: {:?} (mean of {rounds})",
            started.elapsed() / rounds.max(1)
        );
        return;
    }
    // SEGMENT_ROUNDS=N: package every segment N times and print the mean only (to profile it).
    if let Some(rounds) = std::env::var("SEGMENT_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        let index = mp4::index(&FileSource {
            file: &file,
            size,
            name: "hour.mp4",
        })
        .expect("index");
        let plan = plan::Plan::build(&index, plan::Clip::default(), 6.0).expect("plan");
        let segments = plan.segment_count() as u32;
        let started = Instant::now();
        for _ in 0..rounds {
            for n in 0..segments {
                package::build(&index, &plan, (Name::Segment(n), &[]), "").expect("segment");
            }
        }
        println!(
            "a segment's head: {:?} (mean of {})",
            started.elapsed() / (rounds * segments).max(1),
            rounds * segments
        );
        return;
    }
    let started = Instant::now();
    let index = Rc::new(
        mp4::index(&FileSource {
            file: &file,
            size,
            name: "hour.mp4",
        })
        .expect("index"),
    );
    println!(
        "index: {:?} ({} tracks, {:.1} s)",
        started.elapsed(),
        index.tracks.len(),
        index.duration
    );
    let rounds = 20_000;
    let mut out = Vec::with_capacity(70_000);
    let (mut plan, mut write) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for i in 0..rounds {
        let start = (i * 7919 % 350_000) as f64 / 100.0;
        let t = Instant::now();
        let prepared = mp4::prepare(
            &index,
            &Seek {
                start,
                stop: 0.0,
                units: Units::Seconds,
            },
            SeekMode::Keyframe,
        )
        .expect("seek");
        plan += t.elapsed();
        let t = Instant::now();
        out.clear();
        prepared.prefix.write(0, 65_536, &mut out);
        write += t.elapsed();
    }
    println!(
        "plan {:?}/seek, first 64 KiB {:?}/seek",
        plan / rounds as u32,
        write / rounds as u32
    );
    let started = Instant::now();
    let plan = plan::Plan::build(&index, plan::Clip::default(), 6.0).expect("plan");
    let planned = started.elapsed();
    let started = Instant::now();
    let master = package::build(&index, &plan, (Name::Master, &[]), "").expect("master");
    let media = package::build(&index, &plan, (Name::Media, &[]), "").expect("index.m3u8");
    let manifest = package::build(&index, &plan, (Name::Manifest, &[]), "").expect("manifest.mpd");
    let documents = started.elapsed();
    drop((master, media, manifest));
    let segments = plan.segment_count() as u32;
    let started = Instant::now();
    for n in 0..segments {
        package::build(&index, &plan, (Name::Segment(n), &[]), "").expect("segment");
    }
    println!(
        "packaging: plan {planned:?} ({segments} segments), master + index + manifest {documents:?}, a segment's head {:?}",
        started.elapsed() / segments.max(1)
    );
}
