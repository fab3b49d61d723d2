//! GenAI client metrics, aggregated on the exporter thread into explicit-bucket histograms
//! (cumulative, as the OpenTelemetry SDKs export by default). Plain Rust: points in, histogram
//! state out.

use std::collections::HashMap;

/// One operation's measurements, sent from the calling thread in one message.
#[derive(Debug, Clone, Default)]
pub struct GenAiPoint {
    pub attributes: Vec<(String, String)>,
    pub duration: f64,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub time_to_first_chunk: Option<f64>,
    pub time_per_output_chunk: Vec<f64>,
}

/// The instruments of the span contract, with the bucket boundaries the GenAI semantic
/// conventions advise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Instrument {
    Duration,
    TokenUsage,
    TimeToFirstChunk,
    TimePerOutputChunk,
}

const SECONDS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKENS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
const PER_CHUNK: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

impl Instrument {
    pub const ALL: [Instrument; 4] = [
        Instrument::Duration,
        Instrument::TokenUsage,
        Instrument::TimeToFirstChunk,
        Instrument::TimePerOutputChunk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Instrument::Duration => "gen_ai.client.operation.duration",
            Instrument::TokenUsage => "gen_ai.client.token.usage",
            Instrument::TimeToFirstChunk => "gen_ai.client.operation.time_to_first_chunk",
            Instrument::TimePerOutputChunk => "gen_ai.client.operation.time_per_output_chunk",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Instrument::TokenUsage => "{token}",
            _ => "s",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Instrument::Duration => "GenAI operation duration",
            Instrument::TokenUsage => "Number of input and output tokens used",
            Instrument::TimeToFirstChunk => "Time to receive the first chunk of a streamed answer",
            Instrument::TimePerOutputChunk => "Time between chunks of a streamed answer",
        }
    }

    pub fn bounds(self) -> &'static [f64] {
        match self {
            Instrument::TokenUsage => TOKENS,
            Instrument::TimePerOutputChunk => PER_CHUNK,
            _ => SECONDS,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Histogram {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// One more than the bounds: the last counts values above the last bound.
    pub bucket_counts: Vec<u64>,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Histogram {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            bucket_counts: vec![0; bounds.len() + 1],
        }
    }

    fn record(&mut self, bounds: &[f64], v: f64) {
        if !v.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        // Buckets are (previous bound, bound]: the first bound not below v.
        let i = bounds.partition_point(|b| *b < v);
        self.bucket_counts[i] += 1;
    }
}

/// An attribute a histogram adds to its series' set (the token type of token usage).
pub type Extra = Option<(&'static str, &'static str)>;

/// The histograms of one attribute set: one per instrument (token usage: one per token type).
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub duration: Option<Histogram>,
    pub input_tokens: Option<Histogram>,
    pub output_tokens: Option<Histogram>,
    pub time_to_first_chunk: Option<Histogram>,
    pub time_per_output_chunk: Option<Histogram>,
}

impl Series {
    /// The histograms of `instrument`, each with the attribute it adds to the set's own
    /// (the token type of a token-usage histogram).
    pub fn of(
        &self,
        instrument: Instrument,
    ) -> Vec<(Option<(&'static str, &'static str)>, &Histogram)> {
        let pairs: [(Extra, &Option<Histogram>); 2] = match instrument {
            Instrument::Duration => [(None, &self.duration), (None, &None)],
            Instrument::TokenUsage => [
                (Some(("gen_ai.token.type", "input")), &self.input_tokens),
                (Some(("gen_ai.token.type", "output")), &self.output_tokens),
            ],
            Instrument::TimeToFirstChunk => [(None, &self.time_to_first_chunk), (None, &None)],
            Instrument::TimePerOutputChunk => [(None, &self.time_per_output_chunk), (None, &None)],
        };
        pairs
            .into_iter()
            .filter_map(|(extra, h)| h.as_ref().map(|h| (extra, h)))
            .collect()
    }
}

fn record(
    h: &mut Option<Histogram>,
    instrument: Instrument,
    values: impl IntoIterator<Item = f64>,
) {
    let bounds = instrument.bounds();
    let h = h.get_or_insert_with(|| Histogram::new(bounds));
    for v in values {
        h.record(bounds, v);
    }
}

/// All series seen since start-up, by their (sorted) attribute set: one lookup per operation,
/// with a fast hash (the keys are our own attribute sets, not adversarial input).
#[derive(Default)]
pub struct Aggregator {
    pub series: HashMap<Vec<(String, String)>, Series, rustc_hash::FxBuildHasher>,
    /// Points recorded since the last export.
    pub dirty: bool,
}

impl Aggregator {
    pub fn add(&mut self, mut p: GenAiPoint) {
        p.attributes.sort();
        let series = match self.series.get_mut(&p.attributes) {
            Some(s) => s,
            None => self.series.entry(p.attributes).or_default(),
        };
        if let Some(n) = p.input_tokens {
            record(&mut series.input_tokens, Instrument::TokenUsage, [n as f64]);
        }
        if let Some(n) = p.output_tokens {
            record(
                &mut series.output_tokens,
                Instrument::TokenUsage,
                [n as f64],
            );
        }
        if let Some(t) = p.time_to_first_chunk {
            record(
                &mut series.time_to_first_chunk,
                Instrument::TimeToFirstChunk,
                [t],
            );
        }
        if !p.time_per_output_chunk.is_empty() {
            record(
                &mut series.time_per_output_chunk,
                Instrument::TimePerOutputChunk,
                p.time_per_output_chunk,
            );
        }
        record(&mut series.duration, Instrument::Duration, [p.duration]);
        self.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_inclusive() {
        let mut h = Histogram::new(&[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 2.0, 3.0] {
            h.record(&[1.0, 2.0], v);
        }
        assert_eq!(h.bucket_counts, vec![2, 2, 1]);
        assert_eq!((h.count, h.sum, h.min, h.max), (5, 8.0, 0.5, 3.0));
    }

    #[test]
    fn one_point_fills_each_instrument() {
        let mut a = Aggregator::default();
        a.add(GenAiPoint {
            attributes: vec![("gen_ai.request.model".into(), "m".into())],
            duration: 0.5,
            input_tokens: Some(10),
            output_tokens: Some(3),
            time_to_first_chunk: Some(0.1),
            time_per_output_chunk: vec![0.01, 0.02],
        });
        let count = |i: Instrument| {
            a.series
                .values()
                .flat_map(|s| s.of(i))
                .map(|(_, h)| h.count)
                .sum::<u64>()
        };
        assert_eq!(count(Instrument::Duration), 1);
        assert_eq!(count(Instrument::TokenUsage), 2);
        assert_eq!(count(Instrument::TimeToFirstChunk), 1);
        assert_eq!(count(Instrument::TimePerOutputChunk), 2);
        let (attrs, series) = a.series.iter().next().unwrap();
        assert_eq!(attrs, &vec![("gen_ai.request.model".into(), "m".into())]);
        let tokens = series.of(Instrument::TokenUsage);
        assert_eq!(tokens[0].0, Some(("gen_ai.token.type", "input")));
        assert_eq!((tokens[0].1.sum, tokens[1].1.sum), (10.0, 3.0));
    }
}
