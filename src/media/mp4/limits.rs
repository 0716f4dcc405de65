//! How much of a file indexing takes on. A hostile file can declare a moov
//! of gigabytes, or billions of samples in a few bytes of tables; these
//! guards refuse it before memory or time runs out. They follow
//! `options.cache`: a file whose index the cache could hold is never
//! refused, and the defaults (a 256 MB moov, 20 million samples a track,
//! 5 million fragments) stand when the cache is smaller.

/// The guards of one indexing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexLimits {
    /// Largest moov read into memory; also the most bytes of moof boxes
    /// held while a fragmented file is indexed (the moov they become is
    /// held under the same limit).
    pub moov_bytes: u64,
    /// Most samples a track may have: indexing walks every one.
    pub track_samples: u64,
    /// Most fragments indexed (16 bytes each while the file is indexed).
    pub fragments: usize,
}

/// The least an index keeps a sample: its size entry.
const SAMPLE_BYTES_LEAST: u64 = 4;
/// What a fragment costs while the file is indexed: its offset and size.
const FRAGMENT_BYTES: u64 = 16;

impl IndexLimits {
    /// About 100 hours of 50 fps video in a moov of up to 256 MB, in up to
    /// 5 million fragments (one a frame for 23 hours at 60 frames a second).
    pub const DEFAULT: IndexLimits = IndexLimits {
        moov_bytes: 256 * 1024 * 1024,
        track_samples: 20_000_000,
        fragments: 5_000_000,
    };

    /// The limits for a cache of `budget` bytes: a moov as large as the
    /// budget, as many samples as it holds at 4 bytes each and as many
    /// fragments at 16 bytes each, and never less than [`Self::DEFAULT`].
    pub fn for_cache(budget: u64) -> IndexLimits {
        let defaults = Self::DEFAULT;
        IndexLimits {
            moov_bytes: budget.max(defaults.moov_bytes),
            track_samples: (budget / SAMPLE_BYTES_LEAST).max(defaults.track_samples),
            fragments: usize::try_from(budget / FRAGMENT_BYTES)
                .unwrap_or(usize::MAX)
                .max(defaults.fragments),
        }
    }

    /// Most top-level boxes scanned: a moof and an mdat for each fragment
    /// kept, and room for the rest.
    pub fn top_level_boxes(&self) -> usize {
        self.fragments.saturating_mul(2).saturating_add(10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_cache_keeps_the_defaults_and_a_large_one_raises_them() {
        assert_eq!(IndexLimits::for_cache(0), IndexLimits::DEFAULT);
        assert_eq!(IndexLimits::for_cache(64 << 20), IndexLimits::DEFAULT);
        let large = IndexLimits::for_cache(1 << 30);
        assert_eq!(large.moov_bytes, 1 << 30);
        assert_eq!(large.track_samples, (1 << 30) / 4);
        assert_eq!(large.fragments, (1 << 30) / 16);
        assert_eq!(large.top_level_boxes(), 2 * ((1 << 30) / 16) + 10_000);
    }
}
