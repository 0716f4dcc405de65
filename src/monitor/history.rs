//! The monitor's memory of the last hour: one sample of the running totals
//! per second, in a ring, for rates over recent seconds (and the dashboard's
//! charts).

use std::collections::VecDeque;

/// One second's view of the totals.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Unix seconds.
    pub at: i64,
    pub bytes_sent: u64,
    pub bytes_saved: u64,
    pub streams: u64,
    pub throttled: u64,
    pub requests: u64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub responses: [u64; 5],
}

/// Samples kept: an hour.
pub const HISTORY_SECS: usize = 3600;

#[derive(Default)]
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// Records a sample; one per second is kept (a second sample in the
    /// same second replaces the first).
    pub fn record(&mut self, sample: Sample) {
        if self.samples.back().is_some_and(|last| last.at == sample.at) {
            self.samples.pop_back();
        }
        self.samples.push_back(sample);
        while self.samples.len() > HISTORY_SECS {
            self.samples.pop_front();
        }
    }

    /// Bytes per second sent over the last `seconds` (or as many as are known),
    /// up to `now`'s sample.
    pub fn rate(&self, now: &Sample, seconds: i64, pick: impl Fn(&Sample) -> u64) -> f64 {
        let Some(since) = self
            .samples
            .iter()
            .find(|s| s.at >= now.at - seconds && s.at < now.at)
        else {
            return 0.0;
        };
        let span = (now.at - since.at) as f64;
        if span <= 0.0 {
            return 0.0;
        }
        pick(now).saturating_sub(pick(since)) as f64 / span
    }

    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at: i64, bytes_sent: u64) -> Sample {
        Sample {
            at,
            bytes_sent,
            ..Sample::default()
        }
    }

    #[test]
    fn rates_cover_the_last_seconds_known() {
        let mut history = History::default();
        for second in 0..30 {
            history.record(at(100 + second, second as u64 * 1000));
        }
        let now = at(130, 30_000);
        assert_eq!(history.rate(&now, 10, |s| s.bytes_sent), 1000.0);
        let fresh = History::default();
        assert_eq!(fresh.rate(&now, 10, |s| s.bytes_sent), 0.0);
    }

    #[test]
    fn an_hour_is_kept() {
        let mut history = History::default();
        for second in 0..(HISTORY_SECS as i64 + 10) {
            history.record(at(second, 0));
            history.record(at(second, 1));
        }
        assert_eq!(history.samples().count(), HISTORY_SECS);
        assert_eq!(history.samples().next().map(|s| s.at), Some(10));
    }
}
