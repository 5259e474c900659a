//! UN Comtrade files, bulk downloads and API answers, in their published column layout
//! (`typeCode, freqCode, refPeriodId, period, reporterCode, reporterISO, flowCode,
//! partnerCode, partnerISO, partner2Code, classificationCode, cmdCode, customsCode, mosCode,
//! motCode, qtyUnitCode, qtyUnitAbbr, qty, netWgt, cifvalue, fobvalue, primaryValue, …`).
//!
//! What a row becomes:
//! - **Totals only**: a row is a total when its customs procedure is `C00`, its mode of
//!   transport `0`, its second partner `0` and (services) its mode of supply `0`; any other
//!   row is a breakdown of a total, counted and skipped (a file without those columns holds
//!   totals only).
//! - **Flows**: `X` exports, `M` imports, `RX` re-exports, `RM` re-imports; other flow codes
//!   (domestic exports, processing, …) are counted and skipped.
//! - **Countries**: the ISO columns, or, when they are empty or not codes the services know,
//!   the numeric codes (UN M49, and UN Comtrade's own numbers such as 842 for the USA);
//!   `W00` and `0` are the world (`WLD`).
//! - **Products**: `cmdCode` under the scheme of `classificationCode` with its edition (`H5`
//!   → `HS2017:8703`, `S4` → `SITC4:7812`, `EB10` → `EBOPS2010:SF`); `TOTAL` is the total.
//! - **Measures**: `primaryValue` (the value in US dollars), `cifvalue`, `fobvalue`, `netWgt`
//!   (kg) and `qty` in its unit (`qtyUnitAbbr`, or `qtyUnitCode` when the abbreviation is
//!   not there) each go to the series of their measure, when the row has them.

use csv::StringRecord;
use tradepact_model::reference;
use tradepact_model::{Country, Flow, Frequency, Kind, Measure, Period, Product, SeriesKey, Unit};

use crate::import::Row;

/// Where the columns are.
#[derive(Clone, Debug)]
pub struct Columns {
    type_code: Option<usize>,
    freq: Option<usize>,
    period: usize,
    reporter_code: Option<usize>,
    reporter_iso: Option<usize>,
    flow: usize,
    partner_code: Option<usize>,
    partner_iso: Option<usize>,
    partner2_code: Option<usize>,
    classification: Option<usize>,
    cmd: usize,
    customs: Option<usize>,
    mos: Option<usize>,
    mot: Option<usize>,
    qty_unit_code: Option<usize>,
    qty_unit_abbr: Option<usize>,
    qty: Option<usize>,
    net_wgt: Option<usize>,
    cif: Option<usize>,
    fob: Option<usize>,
    primary: Option<usize>,
}

/// What a row is.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Imported: one row per measure it carries.
    Rows(Vec<Row>),
    /// A breakdown of a total (by the named dimension), skipped.
    Breakdown(&'static str),
    /// A flow not imported (its code), skipped.
    OtherFlow(String),
    /// Skipped for the reason given (e.g. "bound rates (duty type BND)").
    Skipped(String),
}

impl Columns {
    /// The columns of a UN Comtrade header, if it is one (it has `cmdCode` and `flowCode`).
    pub fn detect(headers: &StringRecord) -> Option<Result<Columns, String>> {
        let col = |name: &str| {
            headers.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        col("cmdCode")?;
        col("flowCode")?;
        let need = |name: &str| col(name).ok_or_else(|| format!("missing column {name:?}"));
        let columns = || -> Result<Columns, String> {
            let c = Columns {
                type_code: col("typeCode"),
                freq: col("freqCode"),
                period: need("period")?,
                reporter_code: col("reporterCode"),
                reporter_iso: col("reporterISO"),
                flow: need("flowCode")?,
                partner_code: col("partnerCode"),
                partner_iso: col("partnerISO"),
                partner2_code: col("partner2Code"),
                classification: col("classificationCode"),
                cmd: need("cmdCode")?,
                customs: col("customsCode"),
                mos: col("mosCode"),
                mot: col("motCode"),
                qty_unit_code: col("qtyUnitCode"),
                qty_unit_abbr: col("qtyUnitAbbr"),
                qty: col("qty"),
                net_wgt: col("netWgt"),
                cif: col("cifvalue"),
                fob: col("fobvalue"),
                primary: col("primaryValue"),
            };
            if c.reporter_code.is_none() && c.reporter_iso.is_none() {
                return Err("missing column \"reporterISO\" or \"reporterCode\"".to_owned());
            }
            if c.partner_code.is_none() && c.partner_iso.is_none() {
                return Err("missing column \"partnerISO\" or \"partnerCode\"".to_owned());
            }
            Ok(c)
        };
        Some(columns())
    }

    /// What row `r` is; an error names what is wrong with it.
    pub fn parse(&self, r: &StringRecord, source: &str) -> Result<Outcome, String> {
        let get = |i: Option<usize>| i.and_then(|i| r.get(i)).map(str::trim).unwrap_or("");
        for (column, total, dimension) in [
            (self.customs, "C00", "customs procedure"),
            (self.mot, "0", "mode of transport"),
            (self.partner2_code, "0", "second partner"),
            (self.mos, "0", "mode of supply"),
        ] {
            let v = get(column);
            if !v.is_empty() && v != total {
                return Ok(Outcome::Breakdown(dimension));
            }
        }
        let flow = match get(Some(self.flow)) {
            "X" => Flow::Export,
            "M" => Flow::Import,
            "RX" => Flow::ReExport,
            "RM" => Flow::ReImport,
            other => return Ok(Outcome::OtherFlow(other.to_owned())),
        };
        let kind = match get(self.type_code) {
            "" | "C" => Kind::Goods,
            "S" => Kind::Services,
            other => return Err(format!("typeCode {other:?} is not C or S")),
        };
        let (frequency, period) = period(get(self.freq), get(Some(self.period)))?;
        let product = product(get(self.classification), get(Some(self.cmd)), kind)?;
        let reporter = country(get(self.reporter_iso), get(self.reporter_code), "reporter")?;
        let partner = country(get(self.partner_iso), get(self.partner_code), "partner")?;
        let key = |measure| SeriesKey {
            reporter,
            partner,
            flow,
            kind,
            product: product.clone(),
            frequency,
            measure,
        };
        let mut rows = Vec::new();
        let mut add = |measure: Measure, column: Option<usize>, name: &str| {
            let text = get(column);
            if text.is_empty() {
                return Ok(());
            }
            let value: f64 = text
                .parse()
                .map_err(|_| format!("{name} {text:?} is not a number"))?;
            let value = tradepact_model::check_value_of(measure, value)
                .map_err(|e| format!("{name} {e}"))?;
            rows.push(Row {
                key: key(measure),
                period,
                value,
                source: source.to_owned(),
            });
            Ok::<(), String>(())
        };
        add(Measure::ValueUsd, self.primary, "primaryValue")?;
        add(Measure::CifUsd, self.cif, "cifvalue")?;
        add(Measure::FobUsd, self.fob, "fobvalue")?;
        add(Measure::NetWeightKg, self.net_wgt, "netWgt")?;
        if let Some(unit) = unit(get(self.qty_unit_abbr), get(self.qty_unit_code))? {
            add(Measure::Quantity(unit), self.qty, "qty")?;
        }
        if rows.is_empty() {
            return Err(
                "the row has no value (primaryValue, cifvalue, fobvalue, netWgt, qty)".to_owned(),
            );
        }
        Ok(Outcome::Rows(rows))
    }
}

/// The frequency and period of `freqCode` and `period` (`2018`, or `201801` monthly).
fn period(freq: &str, text: &str) -> Result<(Frequency, Period), String> {
    // Digits only: anything else would not parse, and slicing by bytes could split a character.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("period {text:?} is not YYYY or YYYYMM"));
    }
    let (frequency, written) = match (freq, text.len()) {
        ("M", 6) | ("", 6) => (Frequency::Monthly, format!("{}-{}", &text[..4], &text[4..])),
        ("A" | "", 4) => (Frequency::Annual, text.to_owned()),
        (f, _) => {
            return Err(format!(
                "freqCode {f:?} with period {text:?} is not supported (A with YYYY, M with YYYYMM)"
            ))
        }
    };
    let period = Period::parse(&written, frequency).map_err(|e| format!("period {e}"))?;
    Ok((frequency, period))
}

/// The product of `cmdCode` in the scheme of `classificationCode`.
fn product(classification: &str, cmd: &str, kind: Kind) -> Result<Product, String> {
    if cmd == "TOTAL" {
        return Ok(Product::total());
    }
    let scheme = match (classification, kind) {
        ("", Kind::Goods) => "HS",
        ("", Kind::Services) => "EBOPS",
        (c, _) => Product::comtrade_scheme(c)
            .ok_or_else(|| format!("classificationCode {c:?} is not one tradepact knows"))?,
    };
    Product::parse(&format!("{scheme}:{cmd}")).map_err(|e| format!("cmdCode {e}"))
}

/// The country of an ISO column, or of the numeric code when the ISO column is empty or not
/// a code the services know.
fn country(iso: &str, number: &str, what: &str) -> Result<Country, String> {
    if iso == "W00" {
        return Ok(Country::WORLD);
    }
    if let Ok(c) = Country::parse(iso) {
        return Ok(c);
    }
    if let Some(c) = number.parse().ok().and_then(reference::by_number) {
        return Ok(c);
    }
    Err(match (iso, number) {
        ("", "") => format!("{what} has neither an ISO code nor a number"),
        ("", n) => format!("{what}Code {n:?} is not a known M49 or UN Comtrade number"),
        (i, "") => format!("{what}ISO {i:?} is not a known country or area code"),
        (i, n) => format!("{what}ISO {i:?} and {what}Code {n:?} are not known codes"),
    })
}

/// UN Comtrade's quantity units by `qtyUnitCode`, where a file has no `qtyUnitAbbr`.
const UNITS: [(&str, &str); 12] = [
    ("2", "m2"),
    ("3", "1000kwh"),
    ("4", "m"),
    ("5", "u"),
    ("6", "2u"),
    ("7", "l"),
    ("8", "kg"),
    ("9", "1000u"),
    ("10", "u_jeu_pack"),
    ("11", "12u"),
    ("12", "m3"),
    ("13", "carat"),
];

/// The unit of a row's quantity (`None`: the row has no quantity).
fn unit(abbr: &str, code: &str) -> Result<Option<Unit>, String> {
    let written: String = match (abbr, code) {
        ("" | "N/A" | "n/a", "" | "-1" | "1") => return Ok(None),
        ("N/A" | "n/a", _) => return Ok(None),
        ("", code) => match UNITS.iter().find(|(c, _)| *c == code) {
            Some((_, unit)) => (*unit).to_owned(),
            None => format!("code{code}"),
        },
        (abbr, _) => abbr
            .chars()
            .map(|c| match c {
                '²' => '2',
                '³' => '3',
                ' ' | '/' | '(' | ')' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect(),
    };
    Unit::parse(&written)
        .map(Some)
        .map_err(|e| format!("qtyUnitAbbr {abbr:?}: {e}"))
}
