//! CSV import: rows → validated points → batches, sent as `StreamWriteColumns` messages.
//!
//! Files are CSV or TSV (told by the header line), gzip-compressed or not (told by the first
//! bytes). Two layouts are recognised by their header:
//! - **tidy** (tradepact's own, as in `datasets/korus_trade.csv`): `reporter, partner, flow,
//!   kind, product, period, value_usd, source`, with an optional `frequency` column
//!   (otherwise inferred from the period's shape: `2016`, `2016-Q3`, `2016-07`);
//! - **UN Comtrade** files with their full column set: see [`crate::comtrade`].
//!
//! Every row is accounted for ([`Read`]): imported, skipped (a breakdown of a total, a flow
//! not imported: counted by reason), or reported as bad with its line number; the good rows
//! are still written.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};

use tradepact_model::{Country, Flow, Frequency, Kind, Measure, Period, Product, SeriesKey};
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
    Comtrade(Box<crate::comtrade::Columns>),
    Tariffs(crate::tariffs::Columns),
}

impl Layout {
    fn detect(headers: &csv::StringRecord, source_name: &str) -> Result<(Layout, String), String> {
        if let Some(columns) = crate::comtrade::Columns::detect(headers) {
            return Ok((
                Layout::Comtrade(Box::new(columns?)),
                format!("UN Comtrade ({source_name})"),
            ));
        }
        if let Some(columns) = crate::tariffs::Columns::detect(headers) {
            return Ok((Layout::Tariffs(columns?), source_name.to_owned()));
        }
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let need = |name: &str| col(name).ok_or_else(|| format!("missing column {name:?}"));
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

fn value(s: &str, measure: Measure) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("value {s:?} is not a number"))?;
    tradepact_model::check_value_of(measure, v)
}

fn parse_row(
    layout: &Layout,
    r: &csv::StringRecord,
    default_source: &str,
) -> Result<crate::comtrade::Outcome, String> {
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
            // A published balance is stored as such, under the export flow.
            let (flow, measure) = match get(*flow).to_ascii_uppercase().as_str() {
                "EXPORT" => (Flow::Export, Measure::ValueUsd),
                "IMPORT" => (Flow::Import, Measure::ValueUsd),
                "RE_EXPORT" => (Flow::ReExport, Measure::ValueUsd),
                "RE_IMPORT" => (Flow::ReImport, Measure::ValueUsd),
                "BALANCE" => (Flow::Export, Measure::ReportedBalanceUsd),
                other => {
                    return Err(format!(
                        "flow {other:?} is not EXPORT, IMPORT, RE_EXPORT, RE_IMPORT or BALANCE"
                    ))
                }
            };
            let kind = match get(*kind).to_ascii_uppercase().as_str() {
                "GOODS" => Kind::Goods,
                "SERVICES" => Kind::Services,
                "GOODS_SERVICES" | "GOODS_AND_SERVICES"
                    if measure == Measure::ReportedBalanceUsd =>
                {
                    Kind::GoodsAndServices
                }
                other => return Err(format!("kind {other:?} is not GOODS or SERVICES")),
            };
            let source = source
                .map(get)
                .filter(|s| !s.is_empty())
                .unwrap_or(default_source);
            tradepact_model::check_source(source)?;
            Ok(crate::comtrade::Outcome::Rows(vec![Row {
                key: SeriesKey {
                    reporter: Country::parse(get(*reporter))
                        .map_err(|e| format!("reporter {e}"))?,
                    partner: Country::parse(get(*partner)).map_err(|e| format!("partner {e}"))?,
                    flow,
                    kind,
                    product: product(get(*prod)).map_err(|e| format!("product {e}"))?,
                    frequency,
                    measure,
                },
                period: Period::parse(period_text, frequency).map_err(|e| format!("period {e}"))?,
                value: value(get(*val), measure)?,
                source: source.to_owned(),
            }]))
        }
        Layout::Comtrade(columns) => columns.parse(r, default_source),
        Layout::Tariffs(columns) => columns.parse(r, default_source),
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
        pb::StreamWritePointsRequest {
            series,
            ..Default::default()
        }
    }
}

/// How the rows of a file were accounted for: every row is imported, skipped (by reason) or
/// bad.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Data rows read (the header is not one).
    pub rows: u64,
    /// Rows imported.
    pub imported: u64,
    /// Points they gave (a UN Comtrade row gives one per measure it carries).
    pub points: u64,
    /// Rows skipped, by reason ("breakdown by customs procedure", "flow DX", …).
    pub skipped: BTreeMap<String, u64>,
    /// Rows reported as bad.
    pub bad: u64,
}

impl Tally {
    /// Whether every row is accounted for.
    pub fn balanced(&self) -> bool {
        self.imported + self.skipped.values().sum::<u64>() + self.bad == self.rows
    }

    /// The skipped rows in words, e.g. "12 breakdowns by customs procedure, 3 of flow DX".
    pub fn skipped_text(&self) -> String {
        let parts: Vec<String> = self
            .skipped
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        if parts.is_empty() {
            "none skipped".to_owned()
        } else {
            format!("skipped: {}", parts.join(", "))
        }
    }
}

/// `input` decompressed when it is gzip, with the delimiter of its header line (a tab makes
/// it TSV).
fn decoded<'a, R: Read + Send + 'a>(input: R) -> Result<(Box<dyn Read + Send + 'a>, u8), String> {
    let io = |e: std::io::Error| format!("cannot read the file: {e}");
    let mut raw = BufReader::new(input);
    let gzip = raw.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead + Send + 'a> = if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let mut header = Vec::new();
    reader.read_until(b'\n', &mut header).map_err(io)?;
    let delimiter = if header.contains(&b'\t') { b'\t' } else { b',' };
    Ok((
        Box::new(std::io::Cursor::new(header).chain(reader)),
        delimiter,
    ))
}

/// The columns that start a file of releases: each row's release, then a tidy row.
pub const RELEASE_COLUMNS: [&str; 3] = ["release", "release_date", "release_source"];

/// Whether `text` starts with the header of a file of releases.
pub fn is_releases(text: &str) -> bool {
    let header = text.lines().next().unwrap_or_default();
    header.split(',').take(3).eq(RELEASE_COLUMNS)
}

/// Splits a file of releases (the [`RELEASE_COLUMNS`], then the tidy columns) into one tidy
/// file per release, in the order the releases first appear; every row of a release must give
/// the same date and source. Read whole: such files hold published figures, not bulk data.
pub fn split_releases(text: &str) -> anyhow::Result<Vec<(pb::Release, String)>> {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = reader.headers()?.clone();
    let tidy_header: Vec<&str> = header.iter().skip(RELEASE_COLUMNS.len()).collect();
    let mut out: Vec<(pb::Release, csv::Writer<Vec<u8>>)> = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row?;
        let line = i + 2;
        let field = |j: usize| row.get(j).unwrap_or_default().to_owned();
        let release = pb::Release {
            label: field(0),
            date: field(1),
            source: field(2),
        };
        let at = match out.iter().position(|(r, _)| r.label == release.label) {
            Some(at) => at,
            None => {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(&tidy_header)?;
                out.push((release.clone(), w));
                out.len() - 1
            }
        };
        anyhow::ensure!(
            out[at].0 == release,
            "line {line}: release {} was given another date or source on an earlier line",
            release.label
        );
        out[at]
            .1
            .write_record(row.iter().skip(RELEASE_COLUMNS.len()))?;
    }
    out.into_iter()
        .map(|(release, w)| Ok((release, String::from_utf8(w.into_inner()?)?)))
        .collect()
}

/// Reads a CSV or TSV file, gzip-compressed or not, calling `batch` for each full message and
/// `bad` for each bad row, and `progress` with the (decompressed) bytes read so far.
pub fn read_csv<R: Read + Send>(
    input: R,
    source_name: &str,
    mut batch: impl FnMut(pb::StreamWritePointsRequest) -> bool,
    mut bad: impl FnMut(BadRow),
    mut progress: impl FnMut(u64),
) -> Result<Tally, String> {
    let (input, delimiter) = decoded(input)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    let (layout, default_source) = Layout::detect(&headers, source_name)?;
    let mut batcher = Batcher::default();
    let mut tally = Tally::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                tally.rows += 1;
                tally.bad += 1;
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
        tally.rows += 1;
        let line = record.position().map_or(0, |p| p.line());
        let rows = match parse_row(&layout, &record, &default_source) {
            Ok(crate::comtrade::Outcome::Rows(rows)) => rows,
            Ok(crate::comtrade::Outcome::Breakdown(by)) => {
                *tally
                    .skipped
                    .entry(format!("breakdowns by {by}"))
                    .or_default() += 1;
                continue;
            }
            Ok(crate::comtrade::Outcome::OtherFlow(code)) => {
                *tally
                    .skipped
                    .entry(format!("of flow {code:?}"))
                    .or_default() += 1;
                continue;
            }
            Ok(crate::comtrade::Outcome::Skipped(why)) => {
                *tally.skipped.entry(why).or_default() += 1;
                continue;
            }
            Err(reason) => {
                tally.bad += 1;
                bad(BadRow { line, reason });
                continue;
            }
        };
        tally.imported += 1;
        for row in rows {
            tally.points += 1;
            if let Some(full) = batcher.push(row) {
                if !batch(full) {
                    return Ok(tally);
                }
                progress(reader.position().byte());
            }
        }
    }
    if let Some(last) = batcher.finish() {
        batch(last);
    }
    progress(reader.position().byte());
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<pb::StreamWritePointsRequest>, Vec<BadRow>, u64) {
        let (batches, bad, tally) = read_file(text.as_bytes(), "test.csv");
        (batches, bad, tally.imported)
    }

    /// Every batch and bad row of a file, and its tally (checked to add up).
    fn read_file(
        bytes: &[u8],
        name: &str,
    ) -> (Vec<pb::StreamWritePointsRequest>, Vec<BadRow>, Tally) {
        let (mut batches, mut bad) = (Vec::new(), Vec::new());
        let tally = read_csv(
            bytes,
            name,
            |b| {
                batches.push(b);
                true
            },
            |b| bad.push(b),
            |_| {},
        )
        .unwrap();
        assert!(tally.balanced(), "{name}: {tally:?}");
        (batches, bad, tally)
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
        // Re-exports are a flow of their own (they were refused before #11).
        assert_eq!((good, bad.len()), (3, 0), "{bad:?}");
        let s = &batches[0].series;
        assert!(s
            .iter()
            .any(|s| s.key.as_ref().unwrap().flow == pb::Flow::ReExport as i32));
        let cars = s
            .iter()
            .find(|s| s.key.as_ref().unwrap().product == "HS:87")
            .unwrap();
        assert_eq!(cars.points[0].period, "2016-07");
        assert!(s.iter().any(|s| s.key.as_ref().unwrap().partner == "WLD"));
    }

    /// The fixture in UN Comtrade's published layout, as CSV and as gzip-compressed TSV.
    fn fixture(name: &str) -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/comtrade/"
        );
        std::fs::read(format!("{path}{name}")).unwrap()
    }

    #[test]
    fn a_comtrade_file_keeps_totals_measures_editions_and_accounts_for_every_row() {
        for name in ["usa_kor_2018.csv", "usa_kor_2018.tsv.gz"] {
            let (batches, bad, tally) = read_file(&fixture(name), name);
            assert_eq!(
                (tally.rows, tally.imported, tally.points),
                (11, 6, 10),
                "{name}"
            );
            let skipped: Vec<(&str, u64)> = tally
                .skipped
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect();
            assert_eq!(
                skipped,
                [
                    ("breakdowns by customs procedure", 1),
                    ("breakdowns by mode of transport", 1),
                    ("breakdowns by second partner", 1),
                    ("of flow \"DX\"", 1)
                ],
                "{name}"
            );
            assert_eq!(bad.len(), 1, "{name}: {bad:?}");
            assert_eq!(bad[0].line, 11);
            assert!(
                bad[0].reason.contains("partnerCode \"9999\""),
                "{}",
                bad[0].reason
            );
            let mut values: Vec<(String, f64)> = batches
                .iter()
                .flat_map(|b| &b.series)
                .flat_map(|s| {
                    let k = s.key.as_ref().unwrap();
                    let what = format!(
                        "{}>{} {:?} {:?} {} {:?} {}",
                        k.reporter,
                        k.partner,
                        k.flow(),
                        k.kind(),
                        k.product,
                        k.measure(),
                        k.quantity_unit
                    );
                    s.points.iter().map(move |p| (what.clone(), p.value_usd))
                })
                .collect();
            values.sort_by(|a, b| a.0.cmp(&b.0));
            let want = [
                ("USA>KOR Export Goods TOTAL Unspecified ", 56.3e9),
                ("USA>KOR Import Goods HS2017:8703 CifUsd ", 16.25e9),
                ("USA>KOR Import Goods HS2017:8703 FobUsd ", 16.0e9),
                ("USA>KOR Import Goods HS2017:8703 NetWeightKg ", 2.0e9),
                ("USA>KOR Import Goods HS2017:8703 Quantity u", 1.3e6),
                ("USA>KOR Import Goods HS2017:8703 Unspecified ", 16.2e9),
                ("USA>KOR Import Goods SITC4:7812 Unspecified ", 5.0e9),
                ("USA>KOR Import Services EBOPS2010:SF Unspecified ", 7.0e9),
                ("USA>KOR ReExport Goods TOTAL Unspecified ", 1.5e9),
                ("USA>WLD Import Goods HS2017:8703 Unspecified ", 179.0e9),
            ];
            let got: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            assert_eq!(got, want, "{name}");
        }
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
                let tally = read_csv(text.as_bytes(), "fuzz.csv", |b| {
                    points += b.series.iter().map(|s| s.points.len()).sum::<usize>();
                    true
                }, |_| bad += 1, |_| {}).unwrap();
                prop_assert!(tally.balanced(), "{:?}", tally);
                prop_assert_eq!(tally.bad, bad);
                // Rows with an embedded newline count as more than one line; the rest add up.
                if rows.iter().flatten().all(|f| !f.contains(['\n', '\r'])) {
                    prop_assert_eq!(tally.rows, rows.len() as u64);
                }
                prop_assert!(points as u64 <= tally.points);
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

    /// The points of `batches` as (reporter, partner, product, measure, period, value, source).
    fn points_of(
        batches: &[pb::StreamWritePointsRequest],
    ) -> Vec<(String, String, String, i32, String, f64, String)> {
        batches
            .iter()
            .flat_map(|b| &b.series)
            .flat_map(|s| {
                let k = s.key.clone().unwrap();
                s.points.iter().map(move |p| {
                    (
                        k.reporter.clone(),
                        k.partner.clone(),
                        k.product.clone(),
                        k.measure,
                        p.period.clone(),
                        p.value_usd,
                        p.source.clone(),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn the_korus_tariff_ranges_become_one_rate_a_year() {
        let (batches, bad, tally) =
            read_file(crate::SAMPLE_TARIFFS.as_bytes(), "korus_tariffs.csv");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!((tally.rows, tally.imported), (13, 13));
        // 13 rows over their years (open ends: 2000..=2040).
        assert_eq!(tally.points, 334);
        let points = points_of(&batches);
        let rate = |importer: &str, exporter: &str, product: &str, year: &str| {
            let found: Vec<_> = points
                .iter()
                .filter(|p| {
                    (p.0.as_str(), p.1.as_str(), p.2.as_str(), p.4.as_str())
                        == (importer, exporter, product, year)
                })
                .collect();
            assert!(found
                .iter()
                .all(|p| p.3 == pb::Measure::TariffRatePercent as i32));
            found.last().map(|p| (p.5, p.6.clone()))
        };
        // MFN rates under WLD, open ranges from 2000 to 2040.
        assert_eq!(rate("USA", "WLD", "HS:8703", "2000").unwrap().0, 2.5);
        assert_eq!(rate("USA", "WLD", "HS:8703", "2040").unwrap().0, 2.5);
        assert_eq!(rate("USA", "WLD", "HS:8703", "1999"), None);
        // KORUS: 2.5 % until 2015, 0 from 2016; the 2018 amendment's 25 % on light trucks to 2040.
        assert_eq!(rate("USA", "KOR", "HS:8703", "2015").unwrap().0, 2.5);
        assert_eq!(rate("USA", "KOR", "HS:8703", "2016").unwrap().0, 0.0);
        let (truck, source) = rate("USA", "KOR", "HS:870421", "2030").unwrap();
        assert_eq!(truck, 25.0);
        assert!(
            source.starts_with("KORUS-2018: USTR fact sheet"),
            "{source}"
        );
        assert_eq!(rate("USA", "KOR", "HS:72", "2018").unwrap().0, 0.0);
        assert_eq!(rate("USA", "WLD", "HS:72", "2018").unwrap().0, 25.0);
        assert_eq!(rate("USA", "WLD", "HS:72", "2017"), None);
    }

    #[test]
    fn a_wits_trains_download_stores_the_simple_average_and_skips_bound_rates() {
        let text = "Reporter,Reporter Name,Partner,Partner Name,Product,Product Name,Tariff Year,Trade Year,Duty Type,Simple Average,Weighted Average,Minimum Rate,Maximum Rate,Nbr of Total Lines\n\
            KOR,Korea,WLD,World,870323,Cars,2016,2016,MFN,8,8,8,8,3\n\
            KOR,Korea,USA,United States,870323,Cars,2016,2016,PRF,0,0,0,0,3\n\
            KOR,Korea,WLD,World,870323,Cars,2016,2016,BND,80,80,80,80,3\n\
            KOR,Korea,WLD,World,8703ab,Cars,2016,2016,MFN,8,8,8,8,3\n";
        let (batches, bad, tally) = read_file(text.as_bytes(), "wits.csv");
        assert_eq!(
            (tally.rows, tally.imported, tally.bad),
            (4, 2, 1),
            "{bad:?}"
        );
        assert_eq!(tally.skipped.get("bound rates (duty type BND)"), Some(&1));
        assert_eq!(bad[0].line, 5);
        assert!(bad[0].reason.contains("HS code"), "{bad:?}");
        // In partner order: the batches' order is not the file's.
        let mut points = points_of(&batches);
        points.sort_by(|a, b| b.1.cmp(&a.1));
        assert_eq!(points.len(), 2);
        assert_eq!(
            (points[0].1.as_str(), points[0].2.as_str(), points[0].5),
            ("WLD", "HS:870323", 8.0)
        );
        assert_eq!((points[1].1.as_str(), points[1].5), ("USA", 0.0));
        assert!(points[1].6.starts_with("PRF: "), "{:?}", points[1]);
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// How the file's rows were accounted for.
    pub tally: Tally,
    /// The server's summary.
    pub batches: u64,
    /// Points new to their series.
    pub inserted: u64,
    /// Points that replaced a value.
    pub updated: u64,
}

/// Streams `input` (of `len` bytes, for the progress bar) to the data service through one
/// `StreamWriteColumns` call (each batch of rows as columns); bad rows are printed to stderr
/// as `NAME:LINE: reason`.
pub async fn stream<R: Read + Send + 'static>(
    c: &crate::connect::ClientArgs,
    client: &mut tradepact_client::data::DataClient,
    input: R,
    name: &str,
    len: u64,
    show_progress: bool,
    release: Option<pb::Release>,
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
    let mut release = release;
    let reader = tokio::task::spawn_blocking(move || {
        read_csv(
            input,
            &source_name,
            // The call's release rides on its first batch.
            |mut batch| {
                batch.release = release.take();
                let columns = tradepact_client::data::columns_of(batch);
                tx.blocking_send(columns).is_ok()
            },
            |bad| {
                reader_bar.suspend(|| eprintln!("{source_name}:{}: {}", bad.line, bad.reason));
            },
            |pos| reader_bar.set_position(pos),
        )
    });
    let response = client
        .stream_write_columns(c.request(tokio_stream::wrappers::ReceiverStream::new(rx), None))
        .await;
    let tally = reader.await?.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    anyhow::ensure!(
        tally.balanced(),
        "{name}: the rows do not add up (a bug in the importer): {tally:?}"
    );
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
        tally,
        batches: summary.batches,
        inserted: summary.inserted,
        updated: summary.updated,
    })
}
