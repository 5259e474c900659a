//! `EstimateImpact`'s work: the trade effects of a package's options, each estimated from
//! baselines the data service gives, added up.

use tradepact_bargain::{OutcomeSpace, Package};
use tradepact_model::{Failure, Outcome};
use tradepact_proto::negotiation_v1 as pb;

use super::Negotiations;
use crate::data_source::BaselinePeriod;

/// Trade effects of one `EstimateImpact` whose baselines are read at once (two data-service
/// calls each).
pub const IMPACT_CONCURRENCY: usize = 8;

/// What an estimate asks for.
pub struct ImpactRequest<'a> {
    /// The baseline period.
    pub period: BaselinePeriod,
    /// Effects without a baseline are listed as skipped instead of failing the call.
    pub skip_missing_baselines: bool,
    /// The trace context passed on to the data service.
    pub traceparent: &'a str,
}

impl Negotiations {
    /// The impact of the package `package` gives (from the negotiation's space), or of the
    /// agreed package when it gives none.
    pub async fn estimate_impact(
        &self,
        id: &str,
        package: impl FnOnce(&OutcomeSpace) -> Outcome<Option<Package>>,
        req: ImpactRequest<'_>,
    ) -> Outcome<pb::EstimateImpactResponse> {
        let (space, package, effects) = {
            let entry = self.get(id).await?;
            let n = &entry.negotiation;
            let package = match package(&n.space)? {
                Some(package) => package,
                None => {
                    let agreed = n.agreed.ok_or_else(|| {
                        Failure::FailedPrecondition(
                            "the negotiation has no agreed package; give one in `package`"
                                .to_owned(),
                        )
                    })?;
                    n.offers[agreed as usize].package.clone()
                }
            };
            (n.space.clone(), package, entry.meta.effects.clone())
        };
        tracing::info!(traceparent = %req.traceparent, "estimating impact from the data service");
        let mut out = pb::EstimateImpactResponse {
            assumptions: vec![
                "SMART-style partial equilibrium (WITS/SMART, Laird and Yeats 1986), goods, annual series".to_owned(),
                format!(
                    "defaults: import-demand elasticity {}, substitution elasticity {} (overridable per effect)",
                    tradepact_impact::DEFAULT_IMPORT_DEMAND_ELASTICITY,
                    tradepact_impact::DEFAULT_SUBSTITUTION_ELASTICITY
                ),
                "effects of different options are added; interactions between them are ignored".to_owned(),
                "SMART's outputs per line and in total (trade creation, diversion, price effect, tariff revenue, consumer surplus, welfare): formulae in the tradepact-impact crate's documentation".to_owned(),
            ],
            ..Default::default()
        };
        // The effects' baselines are read concurrently (at most IMPACT_CONCURRENCY effects at
        // once) and used in package order, so the first error reported is the same.
        let mut jobs = Vec::new();
        for (i, &o) in package.0.iter().enumerate() {
            let issue = &space.issues()[i];
            let option = &issue.options[usize::from(o)];
            for e in &effects[i][usize::from(o)] {
                jobs.push(
                    self.data
                        .effect(&issue.id, &option.id, e, &req.period, req.traceparent),
                );
            }
        }
        let results: Vec<_> = futures_util::StreamExt::collect(futures_util::StreamExt::buffered(
            futures_util::stream::iter(jobs),
            IMPACT_CONCURRENCY,
        ))
        .await;
        for result in results {
            let impact = match result {
                Ok(impact) => impact,
                Err(Failure::FailedPrecondition(why)) if req.skip_missing_baselines => {
                    out.skipped_effects.push(why);
                    continue;
                }
                Err(failure) => return Err(failure),
            };
            out.exports_change_usd += impact.exports_change_usd;
            out.imports_change_usd += impact.imports_change_usd;
            out.bilateral_balance_change_usd += impact.bilateral_balance_change_usd;
            out.overall_balance_change_usd += impact.overall_balance_change_usd;
            out.trade_creation_usd += impact.trade_creation_usd;
            out.trade_diversion_usd += impact.trade_diversion_usd;
            out.price_effect_usd += impact.price_effect_usd;
            out.total_trade_effect_usd += impact.total_trade_effect_usd;
            out.tariff_revenue_change_usd += impact.tariff_revenue_change_usd;
            out.consumer_surplus_change_usd += impact.consumer_surplus_change_usd;
            out.welfare_change_usd += impact.welfare_change_usd;
            out.effects.push(impact);
        }
        if out.effects.is_empty() && out.skipped_effects.is_empty() {
            out.assumptions
                .push("no option of this package carries a trade effect".to_owned());
        }
        Ok(out)
    }
}
