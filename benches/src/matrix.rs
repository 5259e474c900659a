//! The trade matrix at the shape of real data, generated: many short, sparse series (reporter ×
//! partner × flow × HS6 product, 25 annual periods, most pairs trading few products, Zipf-like
//! values), one row at a time so that nothing holds the whole matrix (`matrix-bench` writes it
//! as a CSV file; `block-sizes` encodes it in column blocks).

use std::collections::HashSet;

use tradepact_bargain::rng::SplitMix64;
use tradepact_store::model::reference::{self, CountryKind};

/// The first year of every series.
pub const FIRST_YEAR: u32 = 1995;
/// Years per series (a fifth of them missing).
pub const YEARS: u32 = 25;

/// One point of the matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Point<'a> {
    /// Reporter code.
    pub reporter: &'a str,
    /// Partner code.
    pub partner: &'a str,
    /// `EXPORT` or `IMPORT`.
    pub flow: &'static str,
    /// HS6 code (without its `HS2022:` classification).
    pub product: &'a str,
    /// Year.
    pub year: u32,
    /// Value in US dollars (whole).
    pub value: f64,
}

/// The generator: its countries, reporters and products, and its random state.
pub struct Matrix {
    countries: Vec<String>,
    reporters: Vec<String>,
    products: Vec<&'static str>,
    rng: SplitMix64,
    /// The series made so far, packed in a number each (8 bytes a series: at 3×10^8 points,
    /// 15 million series, the only thing the generator holds).
    seen: HashSet<u64>,
}

fn uniform(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl Matrix {
    /// The generator over `reporters` reporters (every country a partner, every HS6 product).
    pub fn new(reporters: usize) -> Matrix {
        let countries: Vec<String> = reference::countries()
            .iter()
            .filter(|c| c.kind == CountryKind::Country)
            .map(|c| c.code.to_string())
            .collect();
        let reporters = countries
            .iter()
            .step_by(countries.len() / reporters)
            .take(reporters)
            .cloned()
            .collect();
        let products = reference::hs2022()
            .iter()
            .filter(|e| e.code.len() == 6)
            .map(|e| e.code)
            .collect();
        Matrix {
            countries,
            reporters,
            products,
            rng: SplitMix64::new(0x7a7e),
            seen: HashSet::new(),
        }
    }

    /// The reporters.
    pub fn reporters(&self) -> &[String] {
        &self.reporters
    }

    /// Series generated so far.
    pub fn series(&self) -> usize {
        self.seen.len()
    }

    /// Generates about `points` points (whole series, so a few more), series after series,
    /// calling `f` with each; the points generated.
    pub fn generate(&mut self, points: u64, mut f: impl FnMut(&Point)) -> u64 {
        let mut rows = 0u64;
        while rows < points {
            let rng = &mut self.rng;
            let reporter = rng.below(self.reporters.len() as u64) as usize;
            // Few partners trade much: partner index skewed towards the first.
            let partner = (self.countries.len() as f64 * uniform(rng).powi(3)) as usize;
            if self.countries[partner] == self.reporters[reporter] {
                continue;
            }
            let product = rng.below(self.products.len() as u64) as usize;
            let export = rng.below(2) == 0;
            let packed = (reporter as u64) << 48
                | (partner as u64) << 32
                | u64::from(export) << 31
                | product as u64;
            if !self.seen.insert(packed) {
                continue;
            }
            let scale = 1e3 / (1e-6 + uniform(rng)).powf(1.2);
            for year in FIRST_YEAR..FIRST_YEAR + YEARS {
                // Sparse inside a series too: a fifth of the years are missing.
                if rng.below(5) == 0 {
                    continue;
                }
                let value = (scale * (0.5 + uniform(rng))).round();
                f(&Point {
                    reporter: &self.reporters[reporter],
                    partner: &self.countries[partner],
                    flow: if export { "EXPORT" } else { "IMPORT" },
                    product: self.products[product],
                    year,
                    value,
                });
                rows += 1;
            }
        }
        rows
    }
}
