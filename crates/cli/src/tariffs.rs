//! Tariff rates as data: two CSV layouts that `tradepact import` recognises by their header,
//! stored as the tariff-rate measure (`MEASURE_TARIFF_RATE_PERCENT`) of the importer's import
//! series from the exporter, one annual point per year, in percent.
//!
//! - **Ranges** (the shared KORUS file's layout): `importer, exporter, product, from_year,
//!   to_year, rate_percent, regime, note, source`. `exporter` `ALL` (or `WLD`) is the MFN rate,
//!   stored with partner `WLD`; a row is stored for every year from `from_year` to `to_year`,
//!   an open start meaning [`OPEN_FROM`] and an open end [`OPEN_TO`]. A later row for the same
//!   line, partner and year replaces an earlier one (a file lists schedules in the order they
//!   were enacted: KORUS's 2018 amendment after its 2012 schedule). The regime is kept in the
//!   source text.
//! - **WITS/TRAINS** (the World Bank's tariff downloads): `Reporter, Partner, Product, Tariff
//!   Year` (or `Year`), `Simple Average` (or `SimpleAverage`), optionally `Duty Type`,
//!   `Minimum Rate`/`Min`, `Maximum Rate`/`Max`, `Nbr of Total Lines`/`NbrLines` (matched
//!   without regard to case, spaces and underscores). The simple average is the rate stored;
//!   bound rates (`BND`) are skipped (they are ceilings, not applied rates) and counted; the
//!   minimum, maximum and line count are not stored. Reporter and partner are ISO alpha-3 codes
//!   (`WLD` for MFN); the product is an HS code (2 to 6 digits) stored as `HS:CODE`.

use csv::StringRecord;
use tradepact_model::{Country, Flow, Frequency, Kind, Measure, Period, Product, SeriesKey};

use crate::comtrade::Outcome;
use crate::import::Row;

/// The first year of a range with an open start.
pub const OPEN_FROM: i32 = 2000;
/// The last year of a range with an open end.
pub const OPEN_TO: i32 = 2040;
/// Most years one range row may span.
const MAX_YEARS: i32 = 200;

/// The columns of a tariff file.
#[derive(Clone, Debug)]
pub enum Columns {
    /// Year ranges (the KORUS layout).
    Ranges {
        importer: usize,
        exporter: usize,
        product: usize,
        from_year: usize,
        to_year: usize,
        rate: usize,
        regime: Option<usize>,
        source: Option<usize>,
    },
    /// One year per row (WITS/TRAINS).
    Trains {
        reporter: usize,
        partner: usize,
        product: usize,
        year: usize,
        average: usize,
        duty_type: Option<usize>,
    },
}

/// A header name without case, spaces and underscores.
fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

impl Columns {
    /// The columns of a tariff header, if it is one (it has `rate_percent` and `importer`, or a
    /// simple average and a tariff year).
    pub fn detect(headers: &StringRecord) -> Option<Result<Columns, String>> {
        let names: Vec<String> = headers.iter().map(norm).collect();
        let col = |alternatives: &[&str]| {
            alternatives
                .iter()
                .find_map(|a| names.iter().position(|n| n == &norm(a)))
        };
        let need = |alternatives: &[&str]| {
            col(alternatives).ok_or_else(|| format!("missing column {:?}", alternatives[0]))
        };
        if col(&["rate_percent"]).is_some() && col(&["importer"]).is_some() {
            return Some((|| {
                Ok(Columns::Ranges {
                    importer: need(&["importer"])?,
                    exporter: need(&["exporter"])?,
                    product: need(&["product"])?,
                    from_year: need(&["from_year"])?,
                    to_year: need(&["to_year"])?,
                    rate: need(&["rate_percent"])?,
                    regime: col(&["regime"]),
                    source: col(&["source"]),
                })
            })());
        }
        let average = col(&["Simple Average", "SimpleAverage"]);
        let year = col(&["Tariff Year", "Year"]);
        if average.is_some() && year.is_some() {
            return Some((|| {
                Ok(Columns::Trains {
                    reporter: need(&["Reporter", "Reporter ISO", "ReporterISO3"])?,
                    partner: need(&["Partner", "Partner ISO", "PartnerISO3"])?,
                    product: need(&["Product", "ProductCode", "Product Code"])?,
                    year: need(&["Tariff Year", "Year"])?,
                    average: need(&["Simple Average", "SimpleAverage"])?,
                    duty_type: col(&["Duty Type", "DutyType"]),
                })
            })());
        }
        None
    }

    /// The points of one row.
    pub fn parse(&self, r: &StringRecord, default_source: &str) -> Result<Outcome, String> {
        let get = |i: usize| r.get(i).map(str::trim).unwrap_or("");
        match self {
            Columns::Ranges {
                importer,
                exporter,
                product,
                from_year,
                to_year,
                rate,
                regime,
                source,
            } => {
                let year = |i: usize, open: i32, what: &str| match get(i) {
                    "" => Ok(open),
                    y => y
                        .parse::<i32>()
                        .ok()
                        .filter(|y| (1900..=2100).contains(y))
                        .ok_or_else(|| format!("{what} {y:?} is not a year")),
                };
                let (from, to) = (
                    year(*from_year, OPEN_FROM, "from_year")?,
                    year(*to_year, OPEN_TO, "to_year")?,
                );
                if to < from || to - from >= MAX_YEARS {
                    return Err(format!(
                        "years {from}..{to} are not a range of at most {MAX_YEARS} years"
                    ));
                }
                let text = |i: &Option<usize>| i.map(get).filter(|s| !s.is_empty());
                let source = match (text(regime), text(source)) {
                    (Some(regime), Some(source)) => format!("{regime}: {source}"),
                    (Some(regime), None) => format!("{regime}: {default_source}"),
                    (None, Some(source)) => source.to_owned(),
                    (None, None) => default_source.to_owned(),
                };
                let key = key(get(*importer), get(*exporter), get(*product))?;
                let rate = rate_of(get(*rate))?;
                tradepact_model::check_source(&source)?;
                Ok(Outcome::Rows(
                    (from..=to)
                        .map(|y| Row {
                            key: key.clone(),
                            period: Period::parse(&y.to_string(), Frequency::Annual)
                                .expect("a year between 1900 and 2100"),
                            value: rate,
                            source: source.clone(),
                        })
                        .collect(),
                ))
            }
            Columns::Trains {
                reporter,
                partner,
                product,
                year,
                average,
                duty_type,
            } => {
                let duty = duty_type.map(get).unwrap_or("").to_ascii_uppercase();
                if duty == "BND" {
                    return Ok(Outcome::Skipped("bound rates (duty type BND)".to_owned()));
                }
                let key = key(get(*reporter), get(*partner), get(*product))?;
                let period = Period::parse(get(*year), Frequency::Annual)
                    .map_err(|e| format!("tariff year {e}"))?;
                let source = match duty.as_str() {
                    "" => default_source.to_owned(),
                    duty => format!("{duty}: {default_source}"),
                };
                Ok(Outcome::Rows(vec![Row {
                    key,
                    period,
                    value: rate_of(get(*average))?,
                    source,
                }]))
            }
        }
    }
}

/// The series of `importer`'s tariff on `exporter`'s `product` (`ALL`/`WLD`: MFN).
fn key(importer: &str, exporter: &str, product: &str) -> Result<SeriesKey, String> {
    let exporter = match exporter.to_ascii_uppercase().as_str() {
        "ALL" | "WLD" | "WORLD" => "WLD".to_owned(),
        other => other.to_owned(),
    };
    let code = product.strip_prefix("HS:").unwrap_or(product);
    let product = match code.len() {
        2..=6 if code.bytes().all(|b| b.is_ascii_digit()) => format!("HS:{code}"),
        _ => {
            return Err(format!(
                "product {product:?} is not an HS code of 2 to 6 digits"
            ))
        }
    };
    Ok(SeriesKey {
        reporter: Country::parse(importer).map_err(|e| format!("importer {e}"))?,
        partner: Country::parse(&exporter).map_err(|e| format!("exporter {e}"))?,
        flow: Flow::Import,
        kind: Kind::Goods,
        product: Product::parse(&product).map_err(|e| format!("product {e}"))?,
        frequency: Frequency::Annual,
        measure: Measure::TariffRatePercent,
    })
}

fn rate_of(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("rate {s:?} is not a number"))?;
    tradepact_model::check_value_of(Measure::TariffRatePercent, v)
}
