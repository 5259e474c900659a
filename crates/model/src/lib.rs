//! tradepact's value types, shared by the store, both services and the command-line tool:
//! countries, products, flows, kinds, frequencies, periods, series keys and filters, points,
//! and the field violations that validation reports. No gRPC, no I/O.

mod failure;
pub mod reference;
pub mod release;

pub use failure::{Failure, Outcome};
pub use release::Release;

use std::fmt;

/// One invalid field: its path in the request and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Path of the field, e.g. `series[0].points[3].period`.
    pub field: String,
    /// What is wrong, in words a caller can act on.
    pub description: String,
}

/// Characters of an input value repeated in an error message.
const ECHO_CHARS: usize = 64;

/// `s` quoted for an error message: whole when short, else its first [`ECHO_CHARS`]
/// characters and its length (an error must not repeat a 70 kB input).
pub fn echo(s: &str) -> String {
    match s.char_indices().nth(ECHO_CHARS) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes in all)", &s[..end], s.len()),
    }
}

/// A reporter or partner: an ISO 3166-1 alpha-3 code, a former ISO 3166-3 code, or an area
/// UN Comtrade reports (`WLD` for the world, `EUU` for the EU, …): see [`reference`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 3]);

impl Country {
    /// The world as a partner or reporter.
    pub const WORLD: Country = Country(*b"WLD");

    /// Parses a code in the reference list ([`reference::countries`]).
    pub fn parse(s: &str) -> Result<Self, String> {
        let code = Country::of_shape(s).ok_or_else(|| {
            format!(
                "must be an ISO 3166-1 alpha-3 code in upper case (e.g. \"USA\"), a former ISO 3166-3 code or an area such as \"WLD\", got {}", echo(s)
            )
        })?;
        match reference::country(code) {
            Some(_) => Ok(code),
            None => Err(format!(
                "{} is not a known country or area code (ISO 3166-1 alpha-3, former ISO 3166-3 codes, and WLD, EUU and the X.. areas of UN Comtrade)",
                echo(s)
            )),
        }
    }

    /// Three upper-case letters, whether or not in the reference list (codes read back from
    /// storage: what was stored stays readable).
    pub fn of_shape(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_uppercase)).then(|| Country([b[0], b[1], b[2]]))
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        // Constructed from ASCII upper-case letters only.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The code's three bytes (as keys encode it).
    pub fn bytes(&self) -> [u8; 3] {
        self.0
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Direction of a flow, from the reporter's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flow {
    /// Sold by the reporter to the partner.
    Export,
    /// Bought by the reporter from the partner.
    Import,
    /// Goods imported earlier, exported again in the same state.
    ReExport,
    /// Goods exported earlier, imported again in the same state.
    ReImport,
}

/// What is traded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Merchandise.
    Goods,
    /// Services.
    Services,
    /// Goods and services together: only for a balance as published
    /// ([`Measure::ReportedBalanceUsd`]); other totals are computed, never stored.
    GoodsAndServices,
}

/// How often a series is observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frequency {
    /// `2016`
    Annual,
    /// `2016-Q3`
    Quarterly,
    /// `2016-07`
    Monthly,
}

impl Frequency {
    /// Periods in one year.
    pub fn periods_per_year(self) -> u32 {
        match self {
            Frequency::Annual => 1,
            Frequency::Quarterly => 4,
            Frequency::Monthly => 12,
        }
    }

    /// How many periods of `self` make one period of `coarser`, if `coarser` is
    /// as coarse or coarser.
    pub fn factor_to(self, coarser: Frequency) -> Option<u32> {
        let (fine, coarse) = (self.periods_per_year(), coarser.periods_per_year());
        (fine >= coarse).then(|| fine / coarse)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flow::Export => "EXPORT",
            Flow::Import => "IMPORT",
            Flow::ReExport => "RE_EXPORT",
            Flow::ReImport => "RE_IMPORT",
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Goods => "GOODS",
            Kind::Services => "SERVICES",
            Kind::GoodsAndServices => "GOODS_AND_SERVICES",
        })
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Frequency::Annual => "ANNUAL",
            Frequency::Quarterly => "QUARTERLY",
            Frequency::Monthly => "MONTHLY",
        })
    }
}

/// A classification-qualified product code: `TOTAL` or `SCHEME:CODE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Product(String);

/// The unit of a quantity: 1–12 of `a-z`, `0-9` and `_` (`u` items, `kg`, `l`, `m2`, `2u`
/// pairs, `1000kwh`, …, as UN Comtrade's quantity units are written here).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit([u8; 12]);

/// Longest quantity unit, in bytes.
pub const MAX_UNIT_LEN: usize = 12;

impl Unit {
    /// Checks the shape.
    pub fn parse(s: &str) -> Result<Unit, String> {
        let ok = (1..=MAX_UNIT_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(format!(
                "a quantity unit has 1 to {MAX_UNIT_LEN} of a-z, 0-9 and '_' (e.g. \"u\", \"kg\", \"m2\"), got {}",
                echo(s)
            ));
        }
        let mut b = [0u8; 12];
        b[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Unit(b))
    }

    /// The unit as written.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(MAX_UNIT_LEN);
        // Only ASCII was stored.
        std::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }
}

impl fmt::Debug for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unit({:?})", self.as_str())
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a series' values measure.
///
/// Values in dollars, weights and quantities are summed when a series is read at a coarser
/// frequency (months into years) and across partners or products; tariff rates and reported
/// balances are not (a rate is not additive, and a published balance is kept as published,
/// beside the one computed from exports and imports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// The trade value in US dollars (UN Comtrade's primary value): the default.
    #[default]
    ValueUsd,
    /// The CIF value in US dollars (imports at the border, with insurance and freight).
    CifUsd,
    /// The FOB value in US dollars (free on board).
    FobUsd,
    /// The net weight in kilograms.
    NetWeightKg,
    /// A quantity in its unit.
    Quantity(Unit),
    /// A tariff rate, in percent.
    TariffRatePercent,
    /// A balance as published (exports minus imports, in US dollars), stored under the
    /// export flow.
    ReportedBalanceUsd,
}

impl Measure {
    /// Whether values of this measure add up (over periods, partners, products).
    pub fn sums(&self) -> bool {
        !matches!(
            self,
            Measure::TariffRatePercent | Measure::ReportedBalanceUsd
        )
    }

    /// The byte that stands for the measure in a key (the unit follows a quantity's).
    fn tag(&self) -> u8 {
        match self {
            Measure::ValueUsd => 0,
            Measure::CifUsd => 1,
            Measure::FobUsd => 2,
            Measure::NetWeightKg => 3,
            Measure::Quantity(_) => 4,
            Measure::TariffRatePercent => 5,
            Measure::ReportedBalanceUsd => 6,
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::ValueUsd => f.write_str("VALUE_USD"),
            Measure::CifUsd => f.write_str("CIF_USD"),
            Measure::FobUsd => f.write_str("FOB_USD"),
            Measure::NetWeightKg => f.write_str("NET_WEIGHT_KG"),
            Measure::Quantity(u) => write!(f, "QUANTITY[{u}]"),
            Measure::TariffRatePercent => f.write_str("TARIFF_RATE_PERCENT"),
            Measure::ReportedBalanceUsd => f.write_str("REPORTED_BALANCE_USD"),
        }
    }
}

/// The HS editions a product scheme may name (`HS2017:8703`); `HS` alone is an HS code of an
/// edition not known.
pub const HS_EDITIONS: [&str; 7] = [
    "HS1992", "HS1996", "HS2002", "HS2007", "HS2012", "HS2017", "HS2022",
];

/// Longest product code accepted, in bytes.
pub const MAX_PRODUCT_LEN: usize = 33;

impl Product {
    /// All products.
    pub fn total() -> Self {
        Product("TOTAL".to_owned())
    }

    /// Checks the shape: `TOTAL`, or SCHEME:CODE where the scheme is 2–8 upper-case letters
    /// and, for an edition, up to 4 digits (`HS2017`, `SITC4`), and the code 1–20 upper-case
    /// letters, digits or `_`. Known schemes are checked further: HS codes (`HS` or an HS
    /// edition, [`HS_EDITIONS`]) have 2, 4 or 6 digits, SITC codes (`SITC1`…`SITC4`) 1 to 5.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "TOTAL" {
            return Ok(Product::total());
        }
        let bad = || {
            format!(
                "must be \"TOTAL\" or SCHEME:CODE such as \"HS2017:870323\", \"HS:87\", \"SITC4:7812\", \"EBOPS2010:SF\" or \"USITC:AGRI\", got {}", echo(s)
            )
        };
        let (scheme, code) = s.split_once(':').ok_or_else(bad)?;
        let letters = scheme.bytes().take_while(u8::is_ascii_uppercase).count();
        let digits = &scheme[letters..];
        let scheme_ok = (2..=8).contains(&letters)
            && digits.len() <= 4
            && digits.bytes().all(|b| b.is_ascii_digit());
        let code_ok = (1..=20).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !scheme_ok || !code_ok {
            return Err(bad());
        }
        let all_digits = code.bytes().all(|b| b.is_ascii_digit());
        if &scheme[..letters] == "HS" {
            if !digits.is_empty() && !HS_EDITIONS.contains(&scheme) {
                return Err(format!(
                    "{} is not an HS edition: {} (or HS when the edition is not known)",
                    echo(scheme),
                    HS_EDITIONS.join(", ")
                ));
            }
            if !(matches!(code.len(), 2 | 4 | 6) && all_digits) {
                return Err(format!("HS codes have 2, 4 or 6 digits, got {}", echo(s)));
            }
        }
        if &scheme[..letters] == "SITC" {
            if !matches!(digits, "1" | "2" | "3" | "4") {
                return Err(format!(
                    "SITC is written with its revision: SITC1, SITC2, SITC3 or SITC4, got {}",
                    echo(scheme)
                ));
            }
            if !((1..=5).contains(&code.len()) && all_digits) {
                return Err(format!("SITC codes have 1 to 5 digits, got {}", echo(s)));
            }
        }
        Ok(Product(s.to_owned()))
    }

    /// The product scheme of a UN Comtrade `classificationCode` (`H5` → `HS2017`, `S4` →
    /// `SITC4`, `B5` → `BEC5`, `EB10` → `EBOPS2010`, …), if it is one.
    pub fn comtrade_scheme(classification: &str) -> Option<&'static str> {
        Some(match classification {
            "H0" => "HS1992",
            "H1" => "HS1996",
            "H2" => "HS2002",
            "H3" => "HS2007",
            "H4" => "HS2012",
            "H5" => "HS2017",
            "H6" => "HS2022",
            "HS" => "HS",
            "S1" => "SITC1",
            "S2" => "SITC2",
            "S3" => "SITC3",
            "S4" => "SITC4",
            "B4" => "BEC4",
            "B5" => "BEC5",
            "EB" => "EBOPS",
            "EB02" => "EBOPS2002",
            "EB10" => "EBOPS2010",
            _ => return None,
        })
    }

    /// A code read back from storage: what was stored stays readable whatever the rules of
    /// [`Product::parse`] have become (non-empty ASCII is all that is checked).
    fn stored(b: &[u8]) -> Option<Product> {
        (!b.is_empty() && b.is_ascii()).then(|| Product(String::from_utf8_lossy(b).into_owned()))
    }

    /// The scheme (with its edition) and the code; `None` for `TOTAL`.
    pub fn split(&self) -> Option<(&str, &str)> {
        self.0.split_once(':')
    }

    /// The code as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one time series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Reporting country.
    pub reporter: Country,
    /// Partner country.
    pub partner: Country,
    /// Export or import, from the reporter's side.
    pub flow: Flow,
    /// Goods or services.
    pub kind: Kind,
    /// Product code.
    pub product: Product,
    /// Observation frequency.
    pub frequency: Frequency,
    /// What the values measure.
    pub measure: Measure,
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{} {} {} {} {}",
            self.reporter, self.partner, self.kind, self.flow, self.product, self.frequency
        )?;
        if self.measure != Measure::ValueUsd {
            write!(f, " {}", self.measure)?;
        }
        Ok(())
    }
}

impl SeriesKey {
    /// Byte encoding whose order is (reporter, partner, flow, kind, frequency, measure,
    /// product): 3 + 3 bytes of countries, one byte each for flow, kind, frequency and
    /// measure, a quantity's unit as its length and bytes, then the product. (Format 2 of the
    /// store; format 1 had no measure: [`SeriesKey::decode_format_1`].)
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(11 + self.product.0.len());
        out.extend_from_slice(&self.reporter.bytes());
        out.extend_from_slice(&self.partner.bytes());
        out.push(match self.flow {
            Flow::Export => 1,
            Flow::Import => 2,
            Flow::ReExport => 3,
            Flow::ReImport => 4,
        });
        out.push(match self.kind {
            Kind::Goods => 1,
            Kind::Services => 2,
            Kind::GoodsAndServices => 3,
        });
        out.push(match self.frequency {
            Frequency::Annual => 1,
            Frequency::Quarterly => 2,
            Frequency::Monthly => 3,
        });
        out.push(self.measure.tag());
        if let Measure::Quantity(unit) = self.measure {
            let unit = unit.as_str();
            out.push(unit.len() as u8);
            out.extend_from_slice(unit.as_bytes());
        }
        out.extend_from_slice(self.product.0.as_bytes());
        out
    }

    /// Decodes what `encode` wrote (the store's key bytes).
    pub fn decode(b: &[u8]) -> Option<SeriesKey> {
        let (mut key, rest) = SeriesKey::decode_head(b)?;
        let (&tag, rest) = rest.split_first()?;
        let (measure, rest) = match tag {
            0 => (Measure::ValueUsd, rest),
            1 => (Measure::CifUsd, rest),
            2 => (Measure::FobUsd, rest),
            3 => (Measure::NetWeightKg, rest),
            4 => {
                let (&len, rest) = rest.split_first()?;
                let (unit, rest) = rest.split_at_checked(usize::from(len))?;
                let unit = Unit::parse(std::str::from_utf8(unit).ok()?).ok()?;
                (Measure::Quantity(unit), rest)
            }
            5 => (Measure::TariffRatePercent, rest),
            6 => (Measure::ReportedBalanceUsd, rest),
            _ => return None,
        };
        key.measure = measure;
        key.product = Product::stored(rest)?;
        Some(key)
    }

    /// Decodes a key of the store's format 1 (no measure: the value in US dollars).
    pub fn decode_format_1(b: &[u8]) -> Option<SeriesKey> {
        let (mut key, rest) = SeriesKey::decode_head(b)?;
        key.product = Product::stored(rest)?;
        Some(key)
    }

    /// Countries, flow, kind and frequency of an encoded key, without decoding the rest (a
    /// cheap look for scans over many keys).
    pub fn peek(b: &[u8]) -> Option<(Country, Country, Flow, Kind, Frequency)> {
        if b.len() < 10 {
            return None;
        }
        let country = |s: &[u8]| Country::of_shape(std::str::from_utf8(s).ok()?);
        Some((
            country(&b[0..3])?,
            country(&b[3..6])?,
            match b[6] {
                1 => Flow::Export,
                2 => Flow::Import,
                3 => Flow::ReExport,
                4 => Flow::ReImport,
                _ => return None,
            },
            match b[7] {
                1 => Kind::Goods,
                2 => Kind::Services,
                3 => Kind::GoodsAndServices,
                _ => return None,
            },
            match b[8] {
                1 => Frequency::Annual,
                2 => Frequency::Quarterly,
                3 => Frequency::Monthly,
                _ => return None,
            },
        ))
    }

    /// Countries, flow, kind and frequency; the bytes after them.
    fn decode_head(b: &[u8]) -> Option<(SeriesKey, &[u8])> {
        let (reporter, partner, flow, kind, frequency) = SeriesKey::peek(b)?;
        let key = SeriesKey {
            reporter,
            partner,
            flow,
            kind,
            frequency,
            product: Product::total(),
            measure: Measure::ValueUsd,
        };
        Some((key, &b[9..]))
    }
}

/// Earliest year accepted in a period.
pub const MIN_YEAR: u32 = 1000;
/// Latest year accepted in a period.
pub const MAX_YEAR: u32 = 9999;

/// A period of a given frequency, held as an ordinal that sorts in time order:
/// `year` for annual, `year * 4 + quarter - 1`, `year * 12 + month - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    /// The frequency the ordinal counts in.
    pub frequency: Frequency,
    /// Position in time, in units of the frequency.
    pub ordinal: u32,
}

impl Period {
    /// Parses `2016`, `2016-Q3` or `2016-07`, which must match `frequency`.
    pub fn parse(s: &str, frequency: Frequency) -> Result<Period, String> {
        let expected = match frequency {
            Frequency::Annual => "YYYY",
            Frequency::Quarterly => "YYYY-Qn",
            Frequency::Monthly => "YYYY-MM",
        };
        let bad = || {
            format!(
                "must be a {frequency} period written {expected}, got {}",
                echo(s)
            )
        };
        let digits = |t: &str| -> Option<u32> {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        let (year_str, rest) = match s.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (s, None),
        };
        let year = digits(year_str)
            .filter(|_| year_str.len() == 4)
            .ok_or_else(bad)?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(format!(
                "year must be between {MIN_YEAR} and {MAX_YEAR}, got {}",
                echo(s)
            ));
        }
        let ordinal = match (frequency, rest) {
            (Frequency::Annual, None) => year,
            (Frequency::Quarterly, Some(r)) => {
                let q = r
                    .strip_prefix('Q')
                    .and_then(digits)
                    .filter(|q| (1..=4).contains(q));
                year * 4 + q.ok_or_else(bad)? - 1
            }
            (Frequency::Monthly, Some(r)) if r.len() == 2 => {
                let m = digits(r).filter(|m| (1..=12).contains(m));
                year * 12 + m.ok_or_else(bad)? - 1
            }
            _ => return Err(bad()),
        };
        Ok(Period { frequency, ordinal })
    }

    /// The year the period falls in.
    pub fn year(&self) -> u32 {
        self.ordinal / self.frequency.periods_per_year()
    }

    /// The period of a coarser frequency that contains this one.
    pub fn to_coarser(self, coarser: Frequency) -> Option<Period> {
        let factor = self.frequency.factor_to(coarser)?;
        Some(Period {
            frequency: coarser,
            ordinal: self.ordinal / factor,
        })
    }

    /// Years from `self` to `other` (negative when `other` is earlier).
    pub fn years_until(&self, other: &Period) -> f64 {
        (f64::from(other.ordinal) - f64::from(self.ordinal))
            / f64::from(self.frequency.periods_per_year())
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_year = self.frequency.periods_per_year();
        let (year, sub) = (self.ordinal / per_year, self.ordinal % per_year);
        match self.frequency {
            Frequency::Annual => write!(f, "{year:04}"),
            Frequency::Quarterly => write!(f, "{year:04}-Q{}", sub + 1),
            Frequency::Monthly => write!(f, "{year:04}-{:02}", sub + 1),
        }
    }
}

/// Checks a value in US dollars: finite and not negative.
pub fn check_value(v: f64) -> Result<f64, String> {
    check_value_of(Measure::ValueUsd, v)
}

/// Checks a value of `measure`: finite, and not negative except for a reported balance.
pub fn check_value_of(measure: Measure, v: f64) -> Result<f64, String> {
    let signed = measure == Measure::ReportedBalanceUsd;
    if v.is_finite() && (signed || v >= 0.0) {
        Ok(v)
    } else if signed {
        Err(format!("must be a finite number of US dollars, got {v}"))
    } else if measure == Measure::ValueUsd {
        Err(format!(
            "must be a finite, non-negative number of US dollars, got {v}"
        ))
    } else {
        Err(format!(
            "must be a finite, non-negative number (a {measure}), got {v}"
        ))
    }
}

/// Longest source text kept with a point, in bytes.
pub const MAX_SOURCE_LEN: usize = 1024;

/// Checks a source text: at most [`MAX_SOURCE_LEN`] bytes.
pub fn check_source(s: &str) -> Result<(), String> {
    if s.len() > MAX_SOURCE_LEN {
        Err(format!(
            "must be at most {MAX_SOURCE_LEN} bytes, got {}",
            s.len()
        ))
    } else {
        Ok(())
    }
}

/// One observation to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Period ordinal in the series' frequency.
    pub ordinal: u32,
    /// Value in US dollars.
    pub value: f64,
    /// Where the figure comes from (shared between the points of a batch).
    pub source: std::sync::Arc<str>,
}

/// Points for one series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoints {
    /// The series.
    pub key: SeriesKey,
    /// Its points; periods distinct.
    pub points: Vec<Point>,
}

/// Selects series; `None` matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeriesFilter {
    /// Reporter to match.
    pub reporter: Option<Country>,
    /// Partner to match.
    pub partner: Option<Country>,
    /// Flow to match.
    pub flow: Option<Flow>,
    /// Kind to match.
    pub kind: Option<Kind>,
    /// Exact product, or a prefix when `product_prefix` is set.
    pub product: Option<String>,
    /// Whether `product` is a prefix.
    pub product_prefix: bool,
    /// Frequency to match.
    pub frequency: Option<Frequency>,
    /// Measure to match (`None`: any; the API's default is the value in US dollars).
    pub measure: Option<Measure>,
}

impl SeriesFilter {
    /// Parses a product filter: exact code, or a prefix ending in `*`.
    pub fn parse_product(s: &str) -> Result<(String, bool), String> {
        match s.strip_suffix('*') {
            Some(prefix) => {
                if prefix.len() > MAX_PRODUCT_LEN
                    || !prefix.bytes().all(|b| {
                        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b':'
                    })
                {
                    Err(format!("a product prefix has upper-case letters, digits, '_' and ':' before the '*', got {}", echo(s)))
                } else {
                    Ok((prefix.to_owned(), true))
                }
            }
            None => Product::parse(s).map(|p| (p.0, false)),
        }
    }

    /// Whether `key` passes the filter.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.reporter.is_none_or(|c| c == key.reporter)
            && self.partner.is_none_or(|c| c == key.partner)
            && self.flow.is_none_or(|f| f == key.flow)
            && self.kind.is_none_or(|k| k == key.kind)
            && self.frequency.is_none_or(|f| f == key.frequency)
            && self.measure.is_none_or(|m| m == key.measure)
            && self.product.as_deref().is_none_or(|p| {
                if self.product_prefix {
                    key.product.as_str().starts_with(p)
                } else {
                    key.product.as_str() == p
                }
            })
    }

    /// The longest key prefix every match shares, for a narrower scan.
    pub fn key_prefix(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(r) = self.reporter {
            out.extend_from_slice(&r.bytes());
            if let Some(p) = self.partner {
                out.extend_from_slice(&p.bytes());
            }
        }
        out
    }
}

/// Accumulates field violations with their paths.
#[derive(Debug, Default)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// Records `result`'s error under `field`, returning the value when valid.
    pub fn check<T>(&mut self, field: impl Into<String>, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(description) => {
                self.0.push(Violation {
                    field: field.into(),
                    description,
                });
                None
            }
        }
    }

    /// Like [`Violations::check`], building the field path only when there is a violation
    /// (for hot loops over many points).
    pub fn check_lazy<T>(
        &mut self,
        field: impl FnOnce() -> String,
        result: Result<T, String>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(description) => {
                self.0.push(Violation {
                    field: field(),
                    description,
                });
                None
            }
        }
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many violations were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(value)` when nothing was recorded, else the violations.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<Violation>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }
}
