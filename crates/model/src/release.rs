//! A release (a vintage) of figures: a label such as `census-2018-02`, the date it was
//! published, and where it comes from. Writes may name one; reads may ask for the figures as
//! of one, or as of a date.

use time::{Date, Month};

use crate::{echo, Violations};

/// Characters a release label may have at most.
pub const LABEL_CHARS: usize = 64;

/// A named release of figures.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Release {
    /// Its name: 1 to 64 of `A-Z a-z 0-9 . _ : -`, e.g. `ustr-trade-facts-2016`.
    pub label: String,
    /// The day it was published; releases are ordered by it.
    pub date: Date,
    /// Where it comes from (a citation, a URL); may be empty.
    pub source: String,
}

impl Release {
    /// Checks a release as written, each violation under `field` (`release.label`, …).
    pub fn parse(
        label: &str,
        date: &str,
        source: &str,
        field: &str,
        v: &mut Violations,
    ) -> Option<Release> {
        let label = v.check(format!("{field}.label"), Release::parse_label(label));
        let date = v.check(format!("{field}.date"), parse_date(date));
        let source = v.check(
            format!("{field}.source"),
            if source.len() > 1024 {
                Err(format!(
                    "a release's source is at most 1024 bytes, got {}",
                    source.len()
                ))
            } else {
                Ok(source.to_owned())
            },
        );
        Some(Release {
            label: label?,
            date: date?,
            source: source?,
        })
    }

    /// Checks a label.
    pub fn parse_label(s: &str) -> Result<String, String> {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        if s.is_empty() || s.chars().count() > LABEL_CHARS || !s.chars().all(ok) {
            return Err(format!(
                "a release label is 1 to {LABEL_CHARS} of A-Z a-z 0-9 . _ : -, got {}",
                echo(s)
            ));
        }
        Ok(s.to_owned())
    }
}

/// Parses a calendar date written `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let bad = || {
        format!(
            "a date is written YYYY-MM-DD, e.g. 2018-02-06, got {}",
            echo(s)
        )
    };
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let number = |p: &str| p.parse::<u16>().map_err(|_| bad());
    let month = Month::try_from(u8::try_from(number(m)?).map_err(|_| bad())?).map_err(|_| bad())?;
    Date::from_calendar_date(i32::from(number(y)?), month, number(d)? as u8)
        .map_err(|e| format!("{}: {e}", bad()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_labels_are_checked() {
        assert_eq!(parse_date("2018-02-06").unwrap().to_string(), "2018-02-06");
        for bad in [
            "2018-2-06",
            "2018-02-30",
            "18-02-06",
            "2018-02-06-1",
            "",
            "2018-13-01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert!(Release::parse_label("census-2018-02").is_ok());
        assert!(Release::parse_label("ustr:trade_facts.2016").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(Release::parse_label(bad).is_err(), "{bad}");
        }
        let mut v = Violations::default();
        assert!(Release::parse("ok", "2018-99-01", "", "release", &mut v).is_none());
        assert_eq!(v.0[0].field, "release.date");
    }
}
