//! CSV import: rows → validated points → `StreamWritePoints` batches.
//!
//! Two layouts are recognised by their header:
//! - **tidy** (tradepact's own, as in `datasets/korus_trade.csv`): `reporter, partner, flow,
//!   kind, product, period, value_usd, source`, with an optional `frequency` column
//!   (otherwise inferred from the period's shape: `2016`, `2016-Q3`, `2016-07`);
//! - **UN Comtrade** downloads: `reporterISO, partnerISO, flowCode` (X or M), `cmdCode`,
//!   `period` (`2016` or `201607`), `primaryValue`, optionally `freqCode` and `typeCode`
//!   (C goods, S services). Partner `W00` is the world (`WLD`).
//!
//! A bad row is reported with its line number and skipped; the good rows are still written.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use tradepact_model::{Country, Flow, Frequency, Kind, Period, Product, SeriesKey};
use tradepact_proto::data_v1 as pb;

/// Points per `StreamWritePoints` message.
pub const BATCH_POINTS: usize = 10_000;

/// One valid row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The series.
    pub key: SeriesKey,
    /// The period.
    pub period: Period,
    /// Value in US dollars.
    pub value: f64,
    /// Source text.
    pub source: String,
}

/// A row that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

#[derive(Clone, Debug)]
enum Layout {
    Tidy {
        reporter: usize,
        partner: usize,
        flow: usize,
        kind: usize,
        product: usize,
        period: usize,
        value: usize,
        source: Option<usize>,
        frequency: Option<usize>,
    },
    Comtrade {
        reporter: usize,
        partner: usize,
        flow: usize,
        cmd: usize,
        period: usize,
        value: usize,
        freq: Option<usize>,
        kind: Option<usize>,
    },
}

impl Layout {
    fn detect(headers: &csv::StringRecord, source_name: &str) -> Result<(Layout, String), String> {
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let need = |name: &str| col(name).ok_or_else(|| format!("missing column {name:?}"));
        if col("reporterISO").is_some() {
            Ok((
                Layout::Comtrade {
                    reporter: need("reporterISO")?,
                    partner: need("partnerISO")?,
                    flow: need("flowCode")?,
                    cmd: need("cmdCode")?,
                    period: need("period")?,
                    value: need("primaryValue")?,
                    freq: col("freqCode"),
                    kind: col("typeCode"),
                },
                format!("UN Comtrade ({source_name})"),
            ))
        } else {
            Ok((
                Layout::Tidy {
                    reporter: need("reporter")?,
                    partner: need("partner")?,
                    flow: need("flow")?,
                    kind: need("kind")?,
                    product: need("product")?,
                    period: need("period")?,
                    value: need("value_usd")?,
                    source: col("source"),
                    frequency: col("frequency"),
                },
                source_name.to_owned(),
            ))
        }
    }
}

fn infer_frequency(period: &str) -> Frequency {
    match period.len() {
        7 if period.as_bytes()[5] == b'Q' => Frequency::Quarterly,
        7 => Frequency::Monthly,
        _ => Frequency::Annual,
    }
}

/// Product codes as written in the shared KORUS file, mapped to classification-qualified
/// codes: `HS84` → `HS:84`, `USITC_AGRI` → `USITC:AGRI`, `AG_USDA` → `USDA:AG`.
fn product(s: &str) -> Result<Product, String> {
    if s == "AG_USDA" {
        return Product::parse("USDA:AG");
    }
    match (s.strip_prefix("HS"), s.split_once('_')) {
        (Some(d), _) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
            Product::parse(&format!("HS:{d}"))
        }
        (_, Some((scheme, code))) if !s.contains(':') => {
            Product::parse(&format!("{scheme}:{code}"))
        }
        _ => Product::parse(s),
    }
}

fn value(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("value {s:?} is not a number"))?;
    tradepact_model::check_value(v)
}

fn parse_row(layout: &Layout, r: &csv::StringRecord, default_source: &str) -> Result<Row, String> {
    let get = |i: usize| r.get(i).map(str::trim).unwrap_or("");
    match layout {
        Layout::Tidy {
            reporter,
            partner,
            flow,
            kind,
            product: prod,
            period,
            value: val,
            source,
            frequency,
        } => {
            let period_text = get(*period);
            let frequency = match frequency.map(get) {
                None | Some("") => infer_frequency(period_text),
                Some(f) => match f.to_ascii_uppercase().as_str() {
                    "ANNUAL" | "A" => Frequency::Annual,
                    "QUARTERLY" | "Q" => Frequency::Quarterly,
                    "MONTHLY" | "M" => Frequency::Monthly,
                    _ => {
                        return Err(format!(
                            "frequency {f:?} is not ANNUAL, QUARTERLY or MONTHLY"
                        ))
                    }
                },
            };
            let flow = match get(*flow).to_ascii_uppercase().as_str() {
                "EXPORT" => Flow::Export,
                "IMPORT" => Flow::Import,
                other => return Err(format!("flow {other:?} is not EXPORT or IMPORT")),
            };
            let kind = match get(*kind).to_ascii_uppercase().as_str() {
                "GOODS" => Kind::Goods,
                "SERVICES" => Kind::Services,
                other => return Err(format!("kind {other:?} is not GOODS or SERVICES")),
            };
            let source = source
                .map(get)
                .filter(|s| !s.is_empty())
                .unwrap_or(default_source);
            tradepact_model::check_source(source)?;
            Ok(Row {
                key: SeriesKey {
                    reporter: Country::parse(get(*reporter))
                        .map_err(|e| format!("reporter {e}"))?,
                    partner: Country::parse(get(*partner)).map_err(|e| format!("partner {e}"))?,
                    flow,
                    kind,
                    product: product(get(*prod)).map_err(|e| format!("product {e}"))?,
                    frequency,
                    measure: Default::default(),
                },
                period: Period::parse(period_text, frequency).map_err(|e| format!("period {e}"))?,
                value: value(get(*val))?,
                source: source.to_owned(),
            })
        }
        Layout::Comtrade {
            reporter,
            partner,
            flow,
            cmd,
            period,
            value: val,
            freq,
            kind,
        } => {
            let raw_period = get(*period);
            // Comtrade periods are digits (YYYY or YYYYMM); anything else would not parse,
            // and slicing it by bytes could split a character.
            if !raw_period.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("period {raw_period:?} is not YYYY or YYYYMM"));
            }
            let (frequency, period_text) = match (freq.map(get), raw_period.len()) {
                (Some("M"), 6) | (None, 6) => (
                    Frequency::Monthly,
                    format!("{}-{}", &raw_period[..4], &raw_period[4..]),
                ),
                (Some("A") | None, _) => (Frequency::Annual, raw_period.to_owned()),
                (Some(f), _) => {
                    return Err(format!(
                        "freqCode {f:?} with period {raw_period:?} is not supported (A or M)"
                    ))
                }
            };
            let flow = match get(*flow) {
                "X" => Flow::Export,
                "M" => Flow::Import,
                other => return Err(format!("flowCode {other:?} is not supported (X or M)")),
            };
            let kind = match kind.map(get) {
                None | Some("C") | Some("") => Kind::Goods,
                Some("S") => Kind::Services,
                Some(other) => return Err(format!("typeCode {other:?} is not C or S")),
            };
            let cmd_code = get(*cmd);
            let product = match (cmd_code, kind) {
                ("TOTAL", _) => Ok(Product::total()),
                (c, Kind::Goods) => Product::parse(&format!("HS:{c}")),
                (c, Kind::Services) => Product::parse(&format!("EBOPS:{c}")),
            }
            .map_err(|e| format!("cmdCode {e}"))?;
            let partner_code = match get(*partner) {
                "W00" => "WLD",
                p => p,
            };
            Ok(Row {
                key: SeriesKey {
                    reporter: Country::parse(get(*reporter))
                        .map_err(|e| format!("reporterISO {e}"))?,
                    partner: Country::parse(partner_code).map_err(|e| format!("partnerISO {e}"))?,
                    flow,
                    kind,
                    product,
                    frequency,
                    measure: Default::default(),
                },
                period: Period::parse(&period_text, frequency)
                    .map_err(|e| format!("period {e}"))?,
                value: value(get(*val))?,
                source: default_source.to_owned(),
            })
        }
    }
}

/// Groups rows into `StreamWritePoints` messages of about [`BATCH_POINTS`] points; a
/// repeated (series, period) inside one batch keeps the later row, as a later write would.
#[derive(Default)]
pub struct Batcher {
    series: HashMap<SeriesKey, BTreeMap<u32, (f64, String)>>,
    points: usize,
}

impl Batcher {
    /// Adds a row; returns a full batch when one is ready.
    pub fn push(&mut self, row: Row) -> Option<pb::StreamWritePointsRequest> {
        let slot = self.series.entry(row.key).or_default();
        if slot
            .insert(row.period.ordinal, (row.value, row.source))
            .is_none()
        {
            self.points += 1;
        }
        (self.points >= BATCH_POINTS).then(|| self.take())
    }

    /// The rows held so far as one message, if any.
    pub fn finish(mut self) -> Option<pb::StreamWritePointsRequest> {
        (self.points > 0).then(|| self.take())
    }

    fn take(&mut self) -> pb::StreamWritePointsRequest {
        self.points = 0;
        let series = self
            .series
            .drain()
            .map(|(key, points)| pb::SeriesPoints {
                key: Some(pb::SeriesKey::from(&key)),
                source: String::new(),
                points: points
                    .into_iter()
                    .map(|(ordinal, (value, source))| pb::Point {
                        period: Period {
                            frequency: key.frequency,
                            ordinal,
                        }
                        .to_string(),
                        value_usd: value,
                        source,
                    })
                    .collect(),
            })
            .collect();
        pb::StreamWritePointsRequest { series }
    }
}

/// Reads a CSV, calling `batch` for each full message and `bad` for each bad row, and
/// `progress` with the bytes read so far. Returns the number of good rows.
pub fn read_csv<R: Read>(
    input: R,
    source_name: &str,
    mut batch: impl FnMut(pb::StreamWritePointsRequest) -> bool,
    mut bad: impl FnMut(BadRow),
    mut progress: impl FnMut(u64),
) -> Result<u64, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    let (layout, default_source) = Layout::detect(&headers, source_name)?;
    let mut batcher = Batcher::default();
    let mut good = 0u64;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad(BadRow {
                    line,
                    reason: e.to_string(),
                });
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(format!("cannot read the file: {e}"));
                }
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        match parse_row(&layout, &record, &default_source) {
            Ok(row) => {
                good += 1;
                if let Some(full) = batcher.push(row) {
                    if !batch(full) {
                        return Ok(good);
                    }
                    progress(reader.position().byte());
                }
            }
            Err(reason) => bad(BadRow { line, reason }),
        }
    }
    if let Some(last) = batcher.finish() {
        batch(last);
    }
    progress(reader.position().byte());
    Ok(good)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<pb::StreamWritePointsRequest>, Vec<BadRow>, u64) {
        let (mut batches, mut bad) = (Vec::new(), Vec::new());
        let good = read_csv(
            text.as_bytes(),
            "test.csv",
            |b| {
                batches.push(b);
                true
            },
            |b| bad.push(b),
            |_| {},
        )
        .unwrap();
        (batches, bad, good)
    }

    #[test]
    fn tidy_rows_are_read_and_bad_rows_reported_by_line() {
        let text = "reporter,partner,flow,kind,product,period,value_usd,source\n\
            USA,KOR,export,goods,HS84,2016,6100000000,USTR\n\
            USA,KOR,EXPORT,GOODS,TOTAL,2016-Q3,-5,x\n\
            usa,KOR,IMPORT,GOODS,TOTAL,2016,1,x\n\
            USA,KOR,IMPORT,SERVICES,TOTAL,2016-07,10,\n";
        let (batches, bad, good) = read(text);
        assert_eq!(good, 2);
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 4]);
        assert!(bad[0].reason.contains("non-negative"), "{}", bad[0].reason);
        let series = &batches[0].series;
        assert_eq!(series.len(), 2);
        let hs = series
            .iter()
            .find(|s| s.key.as_ref().unwrap().product == "HS:84")
            .unwrap();
        assert_eq!(hs.points[0].period, "2016");
        let monthly = series
            .iter()
            .find(|s| s.key.as_ref().unwrap().kind == pb::TradeKind::Services as i32)
            .unwrap();
        assert_eq!(
            monthly.key.as_ref().unwrap().frequency,
            pb::Frequency::Monthly as i32
        );
        assert_eq!(monthly.points[0].source, "test.csv");
    }

    #[test]
    fn comtrade_layout_maps_codes_periods_and_world() {
        let text = "typeCode,freqCode,refPeriodId,period,reporterISO,flowCode,partnerISO,cmdCode,primaryValue\n\
            C,M,x,201607,USA,M,KOR,87,123.5\n\
            C,A,x,2016,USA,X,W00,TOTAL,99\n\
            C,A,x,2016,USA,RX,KOR,TOTAL,1\n";
        let (batches, bad, good) = read(text);
        assert_eq!(good, 2);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4);
        let s = &batches[0].series;
        let cars = s
            .iter()
            .find(|s| s.key.as_ref().unwrap().product == "HS:87")
            .unwrap();
        assert_eq!(cars.points[0].period, "2016-07");
        assert!(s.iter().any(|s| s.key.as_ref().unwrap().partner == "WLD"));
    }

    #[test]
    fn the_shared_korus_file_and_the_shipped_sample_read_alike() {
        let shared = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/korus_trade.csv"
        ));
        // The shared folder sits beside the checkout; skip quietly where it does not.
        if let Ok(shared) = shared {
            let (a, bad, _) = read(&shared);
            assert!(bad.is_empty(), "{bad:?}");
            let (b, _, _) = read(crate::SAMPLE_CSV);
            let keys = |batches: &[pb::StreamWritePointsRequest]| {
                let mut k: Vec<String> = batches[0]
                    .series
                    .iter()
                    .map(|s| format!("{:?}", s.key))
                    .collect();
                k.sort();
                k
            };
            assert_eq!(keys(&a), keys(&b));
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn field() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[A-Za-z]{0,4}",
                "(EXPORT|IMPORT|export|X|M|RX)",
                "(GOODS|SERVICES|C|S)",
                "(TOTAL|HS[0-9]{0,7}|HS:[0-9]{2}|[0-9]{2,6}|W00)",
                "[0-9]{0,6}(-[0-9Q]{1,3})?",
                "-?[0-9]{0,14}(\\.[0-9]{0,3})?(e[0-9]{1,3})?",
                Just("NaN".to_owned()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
                let _ = read_csv(&bytes[..], "fuzz.csv", |_| true, |_| {}, |_| {});
            }

            #[test]
            fn every_row_is_either_imported_or_reported(
                tidy in any::<bool>(),
                rows in proptest::collection::vec(proptest::collection::vec(field(), 6..10), 0..40),
            ) {
                let header = if tidy {
                    "reporter,partner,flow,kind,product,period,value_usd,source"
                } else {
                    "typeCode,freqCode,period,reporterISO,flowCode,partnerISO,cmdCode,primaryValue"
                };
                let mut text = format!("{header}\n");
                for r in &rows {
                    let line: Vec<String> = r.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
                    text.push_str(&line.join(","));
                    text.push('\n');
                }
                let (mut bad, mut points) = (0u64, 0usize);
                let good = read_csv(text.as_bytes(), "fuzz.csv", |b| {
                    points += b.series.iter().map(|s| s.points.len()).sum::<usize>();
                    true
                }, |_| bad += 1, |_| {}).unwrap();
                // Rows with an embedded newline count as more than one line; the rest add up.
                if rows.iter().flatten().all(|f| !f.contains(['\n', '\r'])) {
                    prop_assert_eq!(good + bad, rows.len() as u64);
                }
                prop_assert!(points as u64 <= good);
            }
        }
    }

    #[test]
    fn a_comtrade_period_with_multibyte_characters_is_a_bad_row_not_a_panic() {
        // Found by the fuzz test below: six bytes, but not six digits.
        let text = "reporterISO,partnerISO,flowCode,cmdCode,period,primaryValue\nUSA,KOR,X,TOTAL,E{\u{f33}E,1\n";
        let (_, bad, good) = read(text);
        assert_eq!((good, bad.len()), (0, 1));
        assert!(bad[0].reason.contains("YYYYMM"), "{}", bad[0].reason);
    }

    #[test]
    fn the_shipped_sample_reads_without_a_bad_row() {
        let (batches, bad, good) = read(crate::SAMPLE_CSV);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(good, 66);
        assert_eq!(batches.len(), 1);
    }
}

/// What one import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows read and sent.
    pub good_rows: u64,
    /// Rows reported and skipped.
    pub bad_rows: u64,
    /// The server's summary.
    pub batches: u64,
    /// Points new to their series.
    pub inserted: u64,
    /// Points that replaced a value.
    pub updated: u64,
}

/// Streams `input` (of `len` bytes, for the progress bar) to the data service through one
/// `StreamWritePoints` call; bad rows are printed to stderr as `NAME:LINE: reason`.
pub async fn stream<R: Read + Send + 'static>(
    c: &crate::connect::ClientArgs,
    client: &mut tradepact_client::data::DataClient,
    input: R,
    name: &str,
    len: u64,
    show_progress: bool,
) -> anyhow::Result<ImportSummary> {
    let bar = if show_progress {
        indicatif::ProgressBar::new(len)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")?
            .progress_chars("=> "),
    );
    bar.set_message(name.to_owned());
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let reader_bar = bar.clone();
    let source_name = name.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        let mut bad_rows = 0u64;
        let good = read_csv(
            input,
            &source_name,
            |batch| tx.blocking_send(batch).is_ok(),
            |bad| {
                bad_rows += 1;
                reader_bar.suspend(|| eprintln!("{source_name}:{}: {}", bad.line, bad.reason));
            },
            |pos| reader_bar.set_position(pos),
        );
        good.map(|g| (g, bad_rows))
    });
    let response = client
        .stream_write_points(c.request(tokio_stream::wrappers::ReceiverStream::new(rx), None))
        .await;
    let (good_rows, bad_rows) = reader.await?.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    bar.finish_and_clear();
    let summary = response
        .map_err(|s| {
            anyhow::anyhow!(
                "{name}: the data service refused the import: {}",
                s.message()
            )
        })?
        .into_inner();
    Ok(ImportSummary {
        good_rows,
        bad_rows,
        batches: summary.batches,
        inserted: summary.inserted,
        updated: summary.updated,
    })
}
