//! The value types of `tradepact-model` as messages: what clients (the CLI, the negotiation
//! service) and the data service share, so that none of them uses another's conversion code.

use tradepact_model::{Flow, Frequency, Kind, Measure, SeriesKey};

use crate::data_v1 as pb;

impl From<Flow> for pb::Flow {
    fn from(f: Flow) -> Self {
        match f {
            Flow::Export => pb::Flow::Export,
            Flow::Import => pb::Flow::Import,
            Flow::ReExport => pb::Flow::ReExport,
            Flow::ReImport => pb::Flow::ReImport,
        }
    }
}

impl From<Kind> for pb::TradeKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Goods => pb::TradeKind::Goods,
            Kind::Services => pb::TradeKind::Services,
            Kind::GoodsAndServices => pb::TradeKind::GoodsAndServices,
        }
    }
}

impl From<Frequency> for pb::Frequency {
    fn from(f: Frequency) -> Self {
        match f {
            Frequency::Annual => pb::Frequency::Annual,
            Frequency::Quarterly => pb::Frequency::Quarterly,
            Frequency::Monthly => pb::Frequency::Monthly,
        }
    }
}

impl From<Measure> for pb::Measure {
    fn from(m: Measure) -> Self {
        match m {
            Measure::ValueUsd => pb::Measure::Unspecified,
            Measure::CifUsd => pb::Measure::CifUsd,
            Measure::FobUsd => pb::Measure::FobUsd,
            Measure::NetWeightKg => pb::Measure::NetWeightKg,
            Measure::Quantity(_) => pb::Measure::Quantity,
            Measure::TariffRatePercent => pb::Measure::TariffRatePercent,
            Measure::ReportedBalanceUsd => pb::Measure::ReportedBalanceUsd,
        }
    }
}

impl From<&SeriesKey> for pb::SeriesKey {
    fn from(key: &SeriesKey) -> Self {
        pb::SeriesKey {
            reporter: key.reporter.to_string(),
            partner: key.partner.to_string(),
            flow: pb::Flow::from(key.flow).into(),
            kind: pb::TradeKind::from(key.kind).into(),
            product: key.product.to_string(),
            frequency: pb::Frequency::from(key.frequency).into(),
            measure: pb::Measure::from(key.measure).into(),
            quantity_unit: match key.measure {
                Measure::Quantity(unit) => unit.to_string(),
                _ => String::new(),
            },
        }
    }
}
