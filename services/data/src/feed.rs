//! One `WatchSeries` watcher: the durable writes to the series its filter matches, as
//! messages, and where it would resume.

use tradepact_proto::data_v1 as pb;
use tradepact_rpc::watch::{Feed, Step};
use tradepact_store::{Point, SeriesFilter, SeriesKey};

use crate::app::watch::Written;
use crate::convert;

/// A watcher of the series `filter` matches.
pub(crate) struct SeriesFeed {
    filter: SeriesFilter,
    /// The last sequence it was sent (or that its replay covered).
    delivered: u64,
    /// The sequence of the step being sent.
    sending: u64,
}

impl SeriesFeed {
    /// A watcher whose replay covered the writes up to `replayed_until`.
    pub fn new(filter: SeriesFilter, replayed_until: u64) -> SeriesFeed {
        SeriesFeed {
            filter,
            delivered: replayed_until,
            sending: replayed_until,
        }
    }
}

/// Write `sequence` (of `release`, when named) to series `key` as a message.
pub(crate) fn message(
    sequence: u64,
    key: &SeriesKey,
    points: &[Point],
    release: Option<&str>,
) -> pb::WatchSeriesResponse {
    pb::WatchSeriesResponse {
        key: Some(pb::SeriesKey::from(key)),
        points: convert::points_pb(points, key.frequency),
        sequence,
        release: release.unwrap_or_default().to_owned(),
    }
}

impl Feed for SeriesFeed {
    type Update = Written;
    type Message = pb::WatchSeriesResponse;

    fn step(&mut self, update: Written) -> Step<Self::Message> {
        match update {
            Written::Durable(seq, _) if seq <= self.delivered => Step::Skip,
            Written::Durable(seq, batch) => {
                self.sending = seq;
                let release = batch.release.as_ref().map(|r| r.label.as_str());
                let matching = batch.series.iter().filter(|s| self.filter.matches(&s.key));
                Step::Send(
                    matching
                        .map(|s| message(seq, &s.key, &s.points, release))
                        .collect(),
                )
            }
            Written::Shutdown => Step::End,
        }
    }

    fn sent(&mut self) {
        self.delivered = self.sending;
    }

    fn resume_from(&self) -> String {
        format!("from_sequence = {}", self.delivered + 1)
    }
}
