//! The data service as `EstimateImpact` reads it: baselines over gRPC (a deadline on every
//! call, the trace context passed on), the model from `tradepact-impact`. The one place the
//! application reaches another service; its failures are the application's.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tradepact_client::data::DataClient;
use tradepact_impact::{Baseline, Side};
use tradepact_model::{Failure, Outcome};
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;

use crate::app::log::EffectSpec;
use crate::convert::{effect_out, model_effect};

/// How the baseline of a series is read.
#[derive(Clone, Debug)]
pub enum BaselinePeriod {
    /// The latest year with a value.
    Latest,
    /// One year.
    Year(String),
    /// The mean over years `start..=end` that have values.
    Average(String, String),
}

/// The data service, with a deadline on every call and the trace context passed on.
#[derive(Clone)]
pub struct DataSource {
    pub client: DataClient,
    pub timeout: Duration,
    pub token: Option<String>,
}

fn series_key(
    reporter: &str,
    partner: &str,
    flow: data_pb::Flow,
    product: &str,
) -> data_pb::SeriesKey {
    data_pb::SeriesKey {
        reporter: reporter.to_owned(),
        partner: partner.to_owned(),
        flow: flow.into(),
        kind: data_pb::TradeKind::Goods.into(),
        product: product.to_owned(),
        frequency: data_pb::Frequency::Annual.into(),
        ..Default::default()
    }
}

fn describe(k: &data_pb::SeriesKey) -> String {
    let flow = if k.flow == data_pb::Flow::Export as i32 {
        "EXPORT"
    } else {
        "IMPORT"
    };
    format!(
        "{}->{} GOODS {flow} {} ANNUAL",
        k.reporter, k.partner, k.product
    )
}

impl DataSource {
    fn request<T>(&self, message: T, traceparent: &str) -> tonic::Request<T> {
        let mut r = tradepact_client::authorized(message, self.timeout, self.token.as_deref());
        if let Ok(v) = MetadataValue::try_from(traceparent) {
            r.metadata_mut().insert("traceparent", v);
        }
        r
    }

    /// The values of a series in `start..=end` (empty: open); `Ok(None)` when the series does
    /// not exist.
    async fn read(
        &self,
        key: data_pb::SeriesKey,
        start: String,
        end: String,
        traceparent: &str,
    ) -> Outcome<Option<Vec<data_pb::SeriesValue>>> {
        let request = data_pb::GetSeriesRequest {
            key: Some(key),
            start_period: start,
            end_period: end,
            page_size: 10_000,
            ..Default::default()
        };
        let mut client = self.client.clone();
        let started = std::time::Instant::now();
        // A child span of the call that needs the baseline; the data service's span of this
        // call is its child in turn (its traceparent travels with the request).
        let span =
            tradepact_rpc::telemetry::client_span("tradepact.data.v1.TradeDataService/GetSeries");
        let request = self.request(
            request,
            &tradepact_rpc::telemetry::traceparent_of(&span, traceparent),
        );
        let answer = tracing::Instrument::instrument(client.get_series(request), span).await;
        let status = match &answer {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        metrics::histogram!("tradepact_data_service_latency_seconds", "method" => "GetSeries", "status" => format!("{status:?}"))
            .record(started.elapsed().as_secs_f64());
        match answer {
            Ok(r) => Ok(Some(r.into_inner().values)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(unavailable(s)),
        }
    }

    /// The baseline value of a series and the period(s) it covers; `Ok(None)` when the series
    /// or the period has no value.
    async fn value(
        &self,
        key: data_pb::SeriesKey,
        period: &BaselinePeriod,
        traceparent: &str,
    ) -> Outcome<Option<(f64, String)>> {
        let (start, end) = match period {
            BaselinePeriod::Latest => (String::new(), String::new()),
            BaselinePeriod::Year(y) => (y.clone(), y.clone()),
            BaselinePeriod::Average(a, b) => (a.clone(), b.clone()),
        };
        let Some(values) = self.read(key, start, end, traceparent).await? else {
            return Ok(None);
        };
        Ok(match period {
            BaselinePeriod::Latest => values.last().map(|v| (v.value_usd, v.period.clone())),
            BaselinePeriod::Year(_) => values.first().map(|v| (v.value_usd, v.period.clone())),
            BaselinePeriod::Average(a, b) => (!values.is_empty()).then(|| {
                let mean = values.iter().map(|v| v.value_usd).sum::<f64>() / values.len() as f64;
                (mean, format!("mean of {} years in {a}..{b}", values.len()))
            }),
        })
    }

    /// The tariff rate (percent) `importer` applies to `exporter`'s goods (`"WLD"`: MFN) on
    /// `line` in force in `year`: the latest stored rate at or before it, of the line, else of
    /// its heading (`HS:8704`), else of its chapter (`HS:87`), with the level it was found at.
    async fn rate(
        &self,
        importer: &str,
        exporter: &str,
        line: &str,
        year: &str,
        traceparent: &str,
    ) -> Outcome<Option<(f64, String)>> {
        let digits = line.trim_start_matches("HS:");
        for product in [
            line.to_owned(),
            format!("HS:{}", &digits[..4]),
            format!("HS:{}", &digits[..2]),
        ] {
            let key = data_pb::SeriesKey {
                measure: data_pb::Measure::TariffRatePercent.into(),
                ..series_key(importer, exporter, data_pb::Flow::Import, &product)
            };
            let values = self
                .read(key, String::new(), year.to_owned(), traceparent)
                .await?;
            if let Some(rate) = values.and_then(|v| v.last().map(|v| v.value_usd)) {
                return Ok(Some((rate, product)));
            }
        }
        Ok(None)
    }

    /// The importing country's imports of `product` from the exporting one, and from the
    /// world, as seen from the effect's reporter.
    fn trade_keys(e: &EffectSpec, product: &str) -> (data_pb::SeriesKey, data_pb::SeriesKey) {
        match e.side {
            Side::Import => (
                series_key(&e.reporter, &e.partner, data_pb::Flow::Import, product),
                series_key(&e.reporter, "WLD", data_pb::Flow::Import, product),
            ),
            Side::Export => (
                series_key(&e.reporter, &e.partner, data_pb::Flow::Export, product),
                series_key(&e.partner, "WLD", data_pb::Flow::Import, product),
            ),
        }
    }

    /// The baseline of `product`: bilateral trade, its period, and the rest of the world's
    /// (`None` when the importer's world imports are not stored); `Ok(None)` without bilateral
    /// trade.
    async fn trade(
        &self,
        e: &EffectSpec,
        product: &str,
        period: &BaselinePeriod,
        traceparent: &str,
    ) -> Outcome<Option<Trade>> {
        let (bilateral_key, world_key) = Self::trade_keys(e, product);
        // Both baselines at once: one round trip to the data service instead of two.
        let (bilateral, world) = tokio::join!(
            self.value(bilateral_key, period, traceparent),
            self.value(world_key, period, traceparent)
        );
        let Some((bilateral, period)) = bilateral? else {
            return Ok(None);
        };
        Ok(Some(Trade {
            rest_of_world: world?.map(|(w, _)| (w - bilateral).max(0.0)),
            bilateral,
            period,
        }))
    }

    /// The impact of one effect: on its product with the tariffs it gives, or line by line
    /// with the tariffs and trade of the data service.
    pub async fn effect(
        &self,
        issue_id: &str,
        option_id: &str,
        e: &EffectSpec,
        period: &BaselinePeriod,
        traceparent: &str,
    ) -> Outcome<pb::EffectImpact> {
        if !e.lines.is_empty() {
            return self
                .lines_effect(issue_id, option_id, e, period, traceparent)
                .await;
        }
        let (bilateral_key, _) = Self::trade_keys(e, &e.product);
        let what = describe(&bilateral_key);
        let trade = self
            .trade(e, &e.product, period, traceparent)
            .await?
            .ok_or_else(|| {
                Failure::FailedPrecondition(format!(
                    "no baseline for the trade effect of {issue_id}={option_id}: the data service has no value of series {what} for {}",
                    describe_period(period)
                ))
            })?;
        let impact = tradepact_impact::estimate(&model_effect(e), trade.baseline())
            .map_err(|err| Failure::invalid(err.field, err.description))?;
        let mut out = effect_impact(issue_id, option_id, e, &impact);
        out.assumptions.push(format!(
            "baseline: {what} = {:.0} USD ({})",
            trade.bilateral, trade.period
        ));
        out.assumptions.push(
            "the tariff as given with the effect; if it is the tariff equivalent of a non-tariff barrier, the 'tariff revenue' is a rent (a quota rent, a compliance cost), not a government's revenue"
                .to_owned(),
        );
        out.baseline_usd = trade.bilateral;
        out.baseline_period = trade.period;
        out.rest_of_world_usd = trade.rest_of_world;
        Ok(out)
    }

    /// An effect on tariff lines: each line's tariffs (preferential, else MFN) and trade from
    /// the data service; lines without trade of their own merged into their HS chapter's.
    async fn lines_effect(
        &self,
        issue_id: &str,
        option_id: &str,
        e: &EffectSpec,
        period: &BaselinePeriod,
        traceparent: &str,
    ) -> Outcome<pb::EffectImpact> {
        let (importer, exporter) = match e.side {
            Side::Import => (e.reporter.as_str(), e.partner.as_str()),
            Side::Export => (e.partner.as_str(), e.reporter.as_str()),
        };
        // Rows: a line with its own trade, or a chapter standing in for the lines without.
        let mut rows: Vec<(String, Vec<String>, Trade)> = Vec::new();
        let mut by_chapter: Vec<(String, Vec<String>)> = Vec::new();
        for line in &e.lines {
            match self.trade(e, line, period, traceparent).await? {
                Some(trade) => rows.push((line.clone(), vec![line.clone()], trade)),
                None => {
                    let chapter = format!("HS:{}", &line["HS:".len().."HS:".len() + 2]);
                    match by_chapter.iter_mut().find(|(c, _)| *c == chapter) {
                        Some((_, lines)) => lines.push(line.clone()),
                        None => by_chapter.push((chapter, vec![line.clone()])),
                    }
                }
            }
        }
        let mut notes = Vec::new();
        for (chapter, lines) in by_chapter {
            let trade = self.trade(e, &chapter, period, traceparent).await?.ok_or_else(|| {
                Failure::FailedPrecondition(format!(
                    "no baseline for the trade effect of {issue_id}={option_id}: the data service has no trade of {} nor of their chapter {chapter} ({importer} from {exporter}) for {}",
                    lines.join(", "),
                    describe_period(period)
                ))
            })?;
            notes.push(format!(
                "no HS6 trade in the data for {}: the trade of their chapter {chapter} is their baseline, at the simple average of their tariffs (it covers more than these lines: an upper bound)",
                lines.join(", ")
            ));
            rows.push((chapter, lines, trade));
        }

        let mut out_lines = Vec::with_capacity(rows.len());
        let mut impacts = Vec::with_capacity(rows.len());
        for (product, lines, trade) in rows {
            // Tariffs in force in the baseline's year (the last year of an average).
            let year = baseline_year(&trade.period, period);
            let mut tariffs = Vec::with_capacity(lines.len());
            for line in &lines {
                let (preferential, mfn) = tokio::join!(
                    self.rate(importer, exporter, line, &year, traceparent),
                    self.rate(importer, "WLD", line, &year, traceparent)
                );
                let (preferential, mfn) = (preferential?, mfn?);
                let at = |found: &str| match found == line {
                    true => String::new(),
                    false => format!(", the rate of {found}"),
                };
                let (base, source) = match (&preferential, &mfn) {
                    (Some((rate, found)), _) => (*rate, format!("preferential ({exporter}{})", at(found))),
                    (None, Some((rate, found))) => (*rate, format!("MFN{}", at(found))),
                    (None, None) => {
                        return Err(Failure::FailedPrecondition(format!(
                            "no tariff for the trade effect of {issue_id}={option_id}: the data service has no tariff rate of {importer} on {line} (nor its heading or chapter) from {exporter} nor an MFN rate (partner WLD) in force in {year}"
                        )))
                    }
                };
                let row_base = mfn.map_or(base, |(rate, _)| rate);
                tariffs.push((base, source, row_base));
            }
            let n = tariffs.len() as f64;
            let base = tariffs.iter().map(|t| t.0).sum::<f64>() / n;
            let row_base = tariffs.iter().map(|t| t.2).sum::<f64>() / n;
            let new = tariffs
                .iter()
                .map(|t| e.new_tariff(t.0 / 100.0) * 100.0)
                .sum::<f64>()
                / n;
            let row_new = match e.applies_to_all {
                true => {
                    tariffs
                        .iter()
                        .map(|t| e.new_tariff(t.2 / 100.0) * 100.0)
                        .sum::<f64>()
                        / n
                }
                false => row_base,
            };
            let source = tariffs[0].1.clone();
            let effect = tradepact_impact::Effect {
                base_tariff: base / 100.0,
                tariff_change: (new - base) / 100.0,
                rest_of_world_base_tariff: Some(row_base / 100.0),
                rest_of_world_tariff_change: (row_new - row_base) / 100.0,
                ..model_effect(e)
            };
            let impact = tradepact_impact::estimate(&effect, trade.baseline())
                .map_err(|err| Failure::invalid(err.field, err.description))?;
            let mut assumptions = impact.assumptions.clone();
            assumptions.insert(
                0,
                format!(
                    "{}: tariff {base}% ({source}, in force in {year}) → {new}%; rest of the world {row_base}% → {row_new}%; baseline {product} {:.0} USD ({})",
                    lines.join(", "),
                    trade.bilateral,
                    trade.period
                ),
            );
            out_lines.push(pb::LineImpact {
                line: product.clone(),
                lines: lines.clone(),
                product_used: product,
                base_tariff_percent: base,
                base_tariff_source: source,
                new_tariff_percent: new,
                rest_of_world_base_tariff_percent: row_base,
                rest_of_world_new_tariff_percent: row_new,
                baseline_usd: trade.bilateral,
                rest_of_world_usd: trade.rest_of_world,
                trade_creation_usd: impact.creation,
                trade_diversion_usd: impact.diversion,
                price_effect_usd: impact.price_effect,
                total_trade_effect_usd: impact.total_trade_effect,
                tariff_revenue_change_usd: impact.tariff_revenue_change,
                consumer_surplus_change_usd: impact.consumer_surplus_change,
                welfare_change_usd: impact.welfare_change,
                bilateral_balance_change_usd: impact.bilateral_balance_change,
                overall_balance_change_usd: impact.overall_balance_change,
                assumptions,
            });
            impacts.push((impact, trade));
        }
        // The effect's figures are the sums of its lines.
        let totals = tradepact_impact::Totals::of(impacts.iter().map(|(i, _)| i));
        let sum = tradepact_impact::Impact {
            creation: totals.creation,
            diversion: totals.diversion,
            price_effect: totals.price_effect,
            total_trade_effect: totals.total_trade_effect,
            tariff_revenue_change: totals.tariff_revenue_change,
            consumer_surplus_change: totals.consumer_surplus_change,
            welfare_change: totals.welfare_change,
            exports_change: totals.exports_change,
            imports_change: totals.imports_change,
            bilateral_balance_change: totals.bilateral_balance_change,
            overall_balance_change: totals.overall_balance_change,
            assumptions: notes,
            ..Default::default()
        };
        let mut out = effect_impact(issue_id, option_id, e, &sum);
        out.baseline_usd = impacts.iter().map(|(_, t)| t.bilateral).sum();
        out.rest_of_world_usd = impacts
            .iter()
            .map(|(_, t)| t.rest_of_world)
            .sum::<Option<f64>>();
        let mut periods: Vec<&str> = impacts.iter().map(|(_, t)| t.period.as_str()).collect();
        periods.dedup();
        out.baseline_period = periods.join(", ");
        out.lines = out_lines;
        Ok(out)
    }
}

/// Trade before a change.
struct Trade {
    bilateral: f64,
    period: String,
    rest_of_world: Option<f64>,
}

impl Trade {
    fn baseline(&self) -> Baseline {
        Baseline {
            bilateral: self.bilateral,
            rest_of_world: self.rest_of_world,
        }
    }
}

fn describe_period(period: &BaselinePeriod) -> String {
    match period {
        BaselinePeriod::Latest => "any year".to_owned(),
        BaselinePeriod::Year(y) => y.clone(),
        BaselinePeriod::Average(a, b) => format!("{a}..{b}"),
    }
}

/// The year whose tariffs apply to a baseline of `period` (its own year; for an average,
/// the last year asked for).
fn baseline_year(used: &str, period: &BaselinePeriod) -> String {
    match period {
        BaselinePeriod::Average(_, end) => end.clone(),
        _ => used.to_owned(),
    }
}

/// An effect's answer from the model's figures (baseline fields left for the caller).
fn effect_impact(
    issue_id: &str,
    option_id: &str,
    e: &EffectSpec,
    i: &tradepact_impact::Impact,
) -> pb::EffectImpact {
    pb::EffectImpact {
        issue_id: issue_id.to_owned(),
        option_id: option_id.to_owned(),
        effect: Some(effect_out(e)),
        trade_creation_usd: i.creation,
        trade_diversion_usd: i.diversion,
        price_effect_usd: i.price_effect,
        total_trade_effect_usd: i.total_trade_effect,
        tariff_revenue_change_usd: i.tariff_revenue_change,
        consumer_surplus_change_usd: i.consumer_surplus_change,
        welfare_change_usd: i.welfare_change,
        exports_change_usd: i.exports_change,
        imports_change_usd: i.imports_change,
        bilateral_balance_change_usd: i.bilateral_balance_change,
        overall_balance_change_usd: i.overall_balance_change,
        assumptions: i.assumptions.clone(),
        ..Default::default()
    }
}

/// Any failure to reach the data service, or its own unavailability, is `UNAVAILABLE` here.
fn unavailable(s: Status) -> Failure {
    match s.code() {
        Code::InvalidArgument => Failure::Invalid(vec![tradepact_model::Violation {
            field: String::new(),
            description: format!("the data service refused a baseline query: {}", s.message()),
        }]),
        Code::FailedPrecondition => Failure::FailedPrecondition(s.message().to_owned()),
        Code::Unauthenticated | Code::PermissionDenied => Failure::FailedPrecondition(format!(
            "the data service refused this service's credentials ({}); check --data-service-token",
            s.message()
        )),
        _ => Failure::Unavailable(format!(
            "the data service did not answer ({:?}: {}); impact estimates need it, every other call works",
            s.code(),
            s.message()
        )),
    }
}
