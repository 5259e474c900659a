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
        let values = match answer {
            Ok(r) => r.into_inner().values,
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(unavailable(s)),
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

    /// The impact of one effect.
    pub async fn effect(
        &self,
        issue_id: &str,
        option_id: &str,
        e: &EffectSpec,
        period: &BaselinePeriod,
        traceparent: &str,
    ) -> Outcome<pb::EffectImpact> {
        // The importing country's imports from the exporting one, and from the world.
        let (bilateral_key, world_key) = match e.side {
            Side::Import => (
                series_key(&e.reporter, &e.partner, data_pb::Flow::Import, &e.product),
                series_key(&e.reporter, "WLD", data_pb::Flow::Import, &e.product),
            ),
            Side::Export => (
                series_key(&e.reporter, &e.partner, data_pb::Flow::Export, &e.product),
                series_key(&e.partner, "WLD", data_pb::Flow::Import, &e.product),
            ),
        };
        let what = describe(&bilateral_key);
        // Both baselines at once: one round trip to the data service instead of two.
        let (bilateral, world) = tokio::join!(
            self.value(bilateral_key, period, traceparent),
            self.value(world_key, period, traceparent)
        );
        let (bilateral, baseline_period) = bilateral?
            .ok_or_else(|| {
                Failure::FailedPrecondition(format!(
                    "no baseline for the trade effect of {issue_id}={option_id}: the data service has no value of series {what} for {}",
                    match period {
                        BaselinePeriod::Latest => "any year".to_owned(),
                        BaselinePeriod::Year(y) => y.clone(),
                        BaselinePeriod::Average(a, b) => format!("{a}..{b}"),
                    }
                ))
            })?;
        let world = world?;
        let rest_of_world = world.map(|(w, _)| (w - bilateral).max(0.0));
        let impact = tradepact_impact::estimate(
            &model_effect(e),
            Baseline {
                bilateral,
                rest_of_world,
            },
        )
        .map_err(|err| Failure::invalid(err.field, err.description))?;
        let mut assumptions = impact.assumptions;
        assumptions.push(format!(
            "baseline: {what} = {bilateral:.0} USD ({baseline_period})"
        ));
        Ok(pb::EffectImpact {
            issue_id: issue_id.to_owned(),
            option_id: option_id.to_owned(),
            effect: Some(effect_out(e)),
            baseline_usd: bilateral,
            baseline_period,
            rest_of_world_usd: rest_of_world,
            trade_creation_usd: impact.creation,
            trade_diversion_usd: impact.diversion,
            exports_change_usd: impact.exports_change,
            imports_change_usd: impact.imports_change,
            bilateral_balance_change_usd: impact.bilateral_balance_change,
            overall_balance_change_usd: impact.overall_balance_change,
            assumptions,
        })
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
