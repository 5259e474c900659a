//! `tradepact report negotiation ID --out brief.html`: a negotiation brief, one self-contained
//! HTML page (inline CSS and SVG, no script, nothing fetched): the scenario, each party's
//! position as far as the caller may see it, the ZOPA, the utility space, the bargaining
//! solutions beside the agreed (or latest proposed) package, logrolling hints and the trade
//! impact of the Nash package.
//!
//! What the page shows is what the services answer this caller: with one party's scope the
//! analysis is refused (it reveals every position), so the page shows that party's side and
//! says what is left out and why. Each figure carries `data-figure` (its name) and
//! `data-value` (the number as answered, or the option id), so that a test, or a reader's
//! script, can check the page against the RPCs.
//!
//! The page is written by hand with every text from the services escaped ([`esc`]): a handful
//! of tables does not need a template engine.

use std::fmt::Write as _;
use std::path::PathBuf;

use plotters::prelude::*;
use tradepact_proto::negotiation_v1 as npb;

use crate::chart::{draw_space, fetch_negotiation, utility_space, HEAVY_DEADLINE};
use crate::connect::ClientArgs;

/// Flags of `tradepact report negotiation`.
#[derive(Clone, Debug, clap::Args)]
pub struct NegotiationReportArgs {
    /// Negotiation id (e.g. neg-000001).
    pub id: String,
    /// The HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The negotiation service.
    #[arg(
        long,
        env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub negotiation_service: String,
    /// Set the scenario's actual outcome (e.g. korus-2018, the package agreed in 2018) beside
    /// the solutions; without it, the agreed package, else the latest offer.
    #[arg(long)]
    pub compare: Option<String>,
}

/// Writes the brief of `args.id` into `args.out`.
pub async fn negotiation(c: &ClientArgs, args: NegotiationReportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("html")),
        "--out must name an .html file"
    );
    let mut client = c.negotiation(&args.negotiation_service).await?;
    let negotiation = fetch_negotiation(c, &mut client, &args.id, true).await?;
    // The analysis needs every party's position; a refusal is part of the brief, not an error.
    let analysis = match utility_space(c, &mut client, &negotiation).await {
        Ok(found) => Ok(found),
        Err(e) => Err(e.to_string()),
    };
    let impact = match &analysis {
        Ok((_, a)) => match first_package(a.nash.as_ref()) {
            Some(package) => Some(
                client
                    .estimate_impact(c.request(
                        npb::EstimateImpactRequest {
                            id: negotiation.id.clone(),
                            package: Some(package.clone()),
                            baseline: None,
                            skip_missing_baselines: true,
                        },
                        Some(HEAVY_DEADLINE),
                    ))
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|s| s.message().to_owned()),
            ),
            None => None,
        },
        Err(_) => None,
    };
    let actual = match &args.compare {
        Some(scenario) => Some(Actual {
            label: format!("actual ({scenario})"),
            offer_id: None,
            package: npb::Package {
                choices: (crate::scenario::actual_outcome(scenario)?.into_iter())
                    .map(|(issue_id, option_id)| npb::Choice {
                        issue_id,
                        option_id,
                    })
                    .collect(),
            },
        }),
        None => Actual::of(&negotiation),
    };
    let page = Brief {
        negotiation: &negotiation,
        actual,
        analysis: analysis.as_ref().map(|(space, a)| (space, a)),
        impact: impact.as_ref().map(|r| r.as_ref()),
    }
    .html()?;
    std::fs::write(&args.out, page)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Logrolling hints listed at most (the strongest first, as the analysis orders them).
const LOGROLLING_SHOWN: usize = 10;

/// The first package of a solution's first point.
fn first_package(solution: Option<&npb::Solution>) -> Option<&npb::Package> {
    solution?.points.first()?.packages.first()
}

/// `text` with `& < > " '` escaped, for HTML text and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number on the page: shown as `shown`, its value as answered in `data-value`.
fn figure(name: &str, value: f64, shown: String) -> String {
    format!(
        r#"<span class="figure" data-figure="{}" data-value="{value}">{}</span>"#,
        esc(name),
        esc(&shown)
    )
}

fn utility(name: &str, value: f64) -> String {
    figure(name, value, format!("{value:.3}"))
}

/// US dollars as bn or m with a sign.
fn usd(value: f64) -> String {
    match value.abs() >= 1e9 {
        true => format!("{:+.2} bn USD", value / 1e9),
        false => format!("{:+.1} m USD", value / 1e6),
    }
}

/// The package set beside the solutions.
struct Actual {
    label: String,
    /// The offer it comes from (its utilities are in the analysis), if any.
    offer_id: Option<u32>,
    package: npb::Package,
}

impl Actual {
    /// The agreed package, else the latest offer's.
    fn of(n: &npb::Negotiation) -> Option<Actual> {
        let (label, offer) = match n.agreed_offer {
            Some(agreed) => ("agreed", n.offers.iter().find(|o| o.id == agreed)?),
            None => ("latest offer", n.offers.last()?),
        };
        Some(Actual {
            label: format!("{label} (offer {})", offer.id),
            offer_id: Some(offer.id),
            package: offer.package.clone()?,
        })
    }
}

struct Brief<'a> {
    negotiation: &'a npb::Negotiation,
    actual: Option<Actual>,
    analysis: Result<(&'a crate::chart::Space, &'a npb::AnalyzeNegotiationResponse), &'a String>,
    impact: Option<Result<&'a npb::EstimateImpactResponse, &'a String>>,
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em auto;max-width:62em;color:#222;line-height:1.4}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.num{text-align:right}.note{color:#555;font-size:.9em}.left-out{background:#fff6e0;border:1px solid #e8c66a;padding:.6em 1em}\
.same{color:#1a7f37;font-weight:bold}figure{margin:1em 0}svg{max-width:100%;height:auto}";

impl Brief<'_> {
    fn html(&self) -> anyhow::Result<String> {
        let n = self.negotiation;
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{} — negotiation brief</title><style>{STYLE}</style></head><body>\n",
            esc(&n.title)
        );
        let _ = writeln!(
            h,
            "<h1>{}</h1><p class=\"note\">{} · negotiation <code>{}</code> · parties {} · {} · {} offers in {} rounds at most</p>",
            esc(&n.title),
            esc(&n.agreement),
            esc(&n.id),
            esc(&n.parties.join(", ")),
            esc(&status(n)),
            n.offers.len(),
            n.deadline_rounds
        );
        self.left_out(&mut h);
        self.scenario(&mut h);
        self.positions(&mut h);
        if let Ok((space, analysis)) = self.analysis {
            self.zopa(&mut h, analysis);
            let mut svg = String::new();
            crate::chart::register_fonts();
            {
                let root = SVGBackend::with_string(&mut svg, space.size()).into_drawing_area();
                draw_space(&root, space)?;
            }
            let _ = writeln!(
                h,
                "<h2>Utility space</h2><figure>{svg}<figcaption class=\"note\">Each party's utility; the Pareto frontier, the reservation values, the bargaining solutions and the offers so far.</figcaption></figure>"
            );
            self.solutions(&mut h, analysis);
            self.logrolling(&mut h, analysis);
            self.impact(&mut h);
        }
        self.offers(&mut h);
        let _ = writeln!(
            h,
            "<p class=\"note\">Written by <code>tradepact report negotiation</code> from the negotiation service's answers to this caller.</p></body></html>"
        );
        Ok(h)
    }

    /// The parties whose positions the caller may see.
    fn visible(&self) -> Vec<&str> {
        (self.negotiation.positions.iter())
            .filter(|p| p.position.is_some())
            .map(|p| p.party.as_str())
            .collect()
    }

    fn left_out(&self, h: &mut String) {
        let n = self.negotiation;
        let visible = self.visible();
        let hidden: Vec<&str> = (n.parties.iter())
            .map(String::as_str)
            .filter(|p| !visible.contains(p))
            .collect();
        if hidden.is_empty() && self.analysis.is_ok() {
            return;
        }
        let _ = write!(
            h,
            "<div class=\"left-out\" id=\"left-out\"><strong>Left out of this brief.</strong> "
        );
        if !hidden.is_empty() {
            let _ = write!(
                h,
                "The positions of {} are not visible to this caller (it sees {}). ",
                esc(&hidden.join(", ")),
                match visible.is_empty() {
                    true => "none".to_owned(),
                    false => esc(&visible.join(", ")),
                }
            );
        }
        if let Err(why) = self.analysis {
            let _ = write!(
                h,
                "The analysis (ZOPA, utility space, bargaining solutions, logrolling hints and the trade impact of the Nash package) is not shown: it depends on every party's position, and the service answered: <q>{}</q> It needs the scope <code>negotiation:all-parties</code>, or the position scope of every party.",
                esc(why)
            );
        }
        h.push_str("</div>\n");
    }

    fn scenario(&self, h: &mut String) {
        h.push_str("<h2>Scenario</h2><table><tr><th>issue</th><th>options</th></tr>\n");
        for issue in &self.negotiation.issues {
            let options: Vec<String> = (issue.options.iter())
                .map(|o| {
                    let effect = match o.trade_effects.len() {
                        0 => String::new(),
                        k => format!(
                            " <span class=\"note\">({k} trade effect{})</span>",
                            if k == 1 { "" } else { "s" }
                        ),
                    };
                    format!("<code>{}</code> {}{effect}", esc(&o.id), esc(&o.label))
                })
                .collect();
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code> {}</td><td>{}</td></tr>",
                esc(&issue.id),
                esc(&issue.label),
                options.join("<br>")
            );
        }
        h.push_str("</table>\n");
    }

    fn positions(&self, h: &mut String) {
        let n = self.negotiation;
        h.push_str("<h2>Positions</h2>\n");
        for party in &n.parties {
            let position = (n.positions.iter())
                .find(|p| &p.party == party)
                .and_then(|p| p.position.as_ref());
            let Some(position) = position else {
                let _ = writeln!(
                    h,
                    "<p><strong>{}</strong>: not visible to this caller.</p>",
                    esc(party)
                );
                continue;
            };
            let _ = writeln!(
                h,
                "<p><strong>{}</strong>: reservation value {}. Issues by weight, with the option it values most:</p><table><tr><th>issue</th><th class=\"num\">weight</th><th>best option</th></tr>",
                esc(party),
                utility(&format!("reservation-{party}"), position.reservation_value)
            );
            let total: f64 = position.weights.values().sum();
            let mut weights: Vec<(&String, &f64)> = position.weights.iter().collect();
            weights.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
            for (issue, weight) in weights {
                let best = (position.values.get(issue))
                    .and_then(|v| v.values.iter().max_by(|a, b| a.1.total_cmp(b.1)))
                    .map_or_else(String::new, |(option, _)| esc(option));
                let share = if total > 0.0 { weight / total } else { 0.0 };
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td><code>{best}</code></td></tr>",
                    esc(&self.issue_label(issue)),
                    figure(
                        &format!("weight-{party}-{issue}"),
                        *weight,
                        format!("{:.0} %", share * 100.0)
                    )
                );
            }
            h.push_str("</table>\n");
        }
    }

    fn issue_label(&self, id: &str) -> String {
        (self.negotiation.issues.iter())
            .find(|i| i.id == id)
            .map_or_else(|| id.to_owned(), |i| i.label.clone())
    }

    fn option_label(&self, issue: &str, option: &str) -> String {
        (self.negotiation.issues.iter())
            .find(|i| i.id == issue)
            .and_then(|i| i.options.iter().find(|o| o.id == option))
            .map_or_else(|| option.to_owned(), |o| o.label.clone())
    }

    fn zopa(&self, h: &mut String, a: &npb::AnalyzeNegotiationResponse) {
        let n = self.negotiation;
        let _ = write!(
            h,
            "<h2>Zone of possible agreement</h2><p>{} packages; {} of them ({}) give every party at least its reservation value; {} are on the Pareto frontier.</p>",
            figure("outcome-count", a.outcome_count, format!("{:.0}", a.outcome_count)),
            figure("zopa-size", a.zopa_size, format!("{:.0}", a.zopa_size)),
            if a.zopa_exact { "exact" } else { "estimated by sampling" },
            figure("frontier-size", a.frontier_size as f64, a.frontier_size.to_string()),
        );
        let ideal: Vec<String> = (n.parties.iter().zip(&a.ideal))
            .map(|(p, u)| format!("{} {}", esc(p), utility(&format!("ideal-{p}"), *u)))
            .collect();
        let _ = writeln!(
            h,
            "<p class=\"note\">The best each party can get alone (its ideal): {}.</p>",
            ideal.join(", ")
        );
    }

    fn solutions(&self, h: &mut String, a: &npb::AnalyzeNegotiationResponse) {
        let n = self.negotiation;
        let columns: Vec<(&str, &str, Option<&npb::Solution>)> = vec![
            ("Nash", "nash", a.nash.as_ref()),
            ("Kalai–Smorodinsky", "ks", a.kalai_smorodinsky.as_ref()),
            ("egalitarian", "egalitarian", a.egalitarian.as_ref()),
            ("max welfare", "welfare", a.max_welfare.as_ref()),
        ];
        let actual = self.actual.as_ref();
        h.push_str("<h2>Bargaining solutions</h2><table><tr><th>issue</th>");
        for (title, _, s) in &columns {
            let ties = (s.and_then(|s| s.points.first()))
                .map_or(0, |p| p.package_count.max(p.packages.len() as u64));
            let tied = match ties > 1 {
                true => format!(" <span class=\"note\">(one of {ties} tied packages)</span>"),
                false => String::new(),
            };
            let _ = write!(h, "<th>{title}{tied}</th>");
        }
        if let Some(actual) = actual {
            let _ = write!(h, "<th>{}</th>", esc(&actual.label));
        }
        h.push_str("</tr>\n");
        let nash = first_package(a.nash.as_ref());
        let choice = |p: Option<&npb::Package>, issue: &str| {
            p.and_then(|p| p.choices.iter().find(|c| c.issue_id == issue))
                .map(|c| c.option_id.clone())
        };
        for issue in &n.issues {
            let _ = write!(h, "<tr><td>{}</td>", esc(&issue.label));
            for (_, key, s) in &columns {
                let cell = match choice(first_package(*s), &issue.id) {
                    Some(o) => format!(
                        r#"<span data-figure="{key}-choice-{}" data-value="{}">{}</span>"#,
                        esc(&issue.id),
                        esc(&o),
                        esc(&self.option_label(&issue.id, &o))
                    ),
                    None => "—".to_owned(),
                };
                let _ = write!(h, "<td>{cell}</td>");
            }
            if let Some(actual) = actual {
                let cell = match choice(Some(&actual.package), &issue.id) {
                    Some(o) => {
                        let same = choice(nash, &issue.id).as_deref() == Some(o.as_str());
                        format!(
                            "{}{}",
                            esc(&self.option_label(&issue.id, &o)),
                            if same {
                                r#" <span class="same" title="as in the Nash package">=</span>"#
                            } else {
                                ""
                            }
                        )
                    }
                    None => "—".to_owned(),
                };
                let _ = write!(h, "<td>{cell}</td>");
            }
            h.push_str("</tr>\n");
        }
        for (i, party) in n.parties.iter().enumerate() {
            let _ = write!(h, "<tr><th>utility of {}</th>", esc(party));
            for (_, key, s) in &columns {
                let cell = (s.and_then(|s| s.points.first()))
                    .and_then(|p| p.utilities.get(i))
                    .map_or_else(
                        || "—".to_owned(),
                        |u| utility(&format!("{key}-utility-{party}"), *u),
                    );
                let _ = write!(h, "<td class=\"num\">{cell}</td>");
            }
            if let Some(actual) = actual {
                let u = (a.offers.iter())
                    .find(|o| Some(o.offer_id) == actual.offer_id)
                    .and_then(|o| o.utilities.get(i));
                let cell = u.map_or_else(
                    || "—".to_owned(),
                    |u| utility(&format!("actual-utility-{party}"), *u),
                );
                let _ = write!(h, "<td class=\"num\">{cell}</td>");
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
        if let (Some(actual), Some(nash)) = (actual, nash) {
            let same = (n.issues.iter())
                .filter(|i| {
                    let chosen = choice(Some(&actual.package), &i.id);
                    chosen.is_some() && chosen == choice(Some(nash), &i.id)
                })
                .count();
            let _ = writeln!(
                h,
                "<p>The {} package matches the Nash package on {} of {} issues (marked =).</p>",
                esc(&actual.label),
                figure("matches-nash", same as f64, same.to_string()),
                n.issues.len()
            );
        }
    }

    fn logrolling(&self, h: &mut String, a: &npb::AnalyzeNegotiationResponse) {
        h.push_str("<h2>Logrolling hints</h2>");
        if a.logrolling_hints.is_empty() {
            h.push_str("<p>No pair of issues is worth trading.</p>\n");
            return;
        }
        let shown = a.logrolling_hints.len().min(LOGROLLING_SHOWN);
        let _ = writeln!(
            h,
            "<p class=\"note\">Issue pairs where one party values what it gives less than the other values what it gets (ratio of the weights' exchange rates: higher trades better){}.</p><table><tr><th>party</th><th>gives</th><th>for</th><th>counterpart</th><th class=\"num\">ratio</th></tr>",
            match shown < a.logrolling_hints.len() {
                true => format!("; the strongest {shown} of {}", a.logrolling_hints.len()),
                false => String::new(),
            }
        );
        for (k, hint) in a.logrolling_hints[..shown].iter().enumerate() {
            let _ =
                writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(&hint.party),
                esc(&self.issue_label(&hint.gives_issue)),
                esc(&self.issue_label(&hint.gets_issue)),
                esc(&hint.counterpart),
                figure(&format!("logroll-ratio-{k}"), hint.ratio, format!("{:.2}", hint.ratio))
            );
        }
        h.push_str("</table>\n");
    }

    fn impact(&self, h: &mut String) {
        h.push_str("<h2>Trade impact of the Nash package</h2>");
        let impact = match self.impact {
            None => {
                h.push_str("<p>The analysis has no Nash package.</p>\n");
                return;
            }
            Some(Err(why)) => {
                let _ = writeln!(
                    h,
                    "<p class=\"left-out\">Not estimated: the service answered <q>{}</q> (the estimate reads baselines from the data service and needs <code>data:read</code> too).</p>",
                    esc(why)
                );
                return;
            }
            Some(Ok(impact)) => impact,
        };
        let _ = write!(
            h,
            "<p>Exports {}, imports {}: the bilateral balance changes by {}, the overall balance by {}.</p>",
            figure("impact-exports", impact.exports_change_usd, usd(impact.exports_change_usd)),
            figure("impact-imports", impact.imports_change_usd, usd(impact.imports_change_usd)),
            figure("impact-bilateral", impact.bilateral_balance_change_usd, usd(impact.bilateral_balance_change_usd)),
            figure("impact-overall", impact.overall_balance_change_usd, usd(impact.overall_balance_change_usd)),
        );
        if !impact.effects.is_empty() {
            h.push_str("<table><tr><th>option</th><th>flow</th><th>baseline</th><th class=\"num\">creation</th><th class=\"num\">diversion</th><th class=\"num\">bilateral balance</th></tr>\n");
            for e in &impact.effects {
                let effect = e.effect.clone().unwrap_or_default();
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{} ← {} {}</td><td>{} ({})</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&self.option_label(&e.issue_id, &e.option_id)),
                    esc(&effect.reporter),
                    esc(&effect.partner),
                    esc(&effect.product),
                    esc(&usd(e.baseline_usd).replace('+', "")),
                    esc(&e.baseline_period),
                    esc(&usd(e.trade_creation_usd)),
                    esc(&usd(e.trade_diversion_usd)),
                    esc(&usd(e.bilateral_balance_change_usd)),
                );
            }
            h.push_str("</table>\n");
        }
        let notes: Vec<String> = (impact.assumptions.iter())
            .map(|a| esc(a))
            .chain(
                impact
                    .skipped_effects
                    .iter()
                    .map(|s| format!("skipped: {}", esc(s))),
            )
            .collect();
        let _ = writeln!(
            h,
            "<ul class=\"note\">{}</ul>",
            notes
                .iter()
                .map(|n| format!("<li>{n}</li>"))
                .collect::<String>()
        );
    }

    fn offers(&self, h: &mut String) {
        let n = self.negotiation;
        h.push_str("<h2>Offers</h2>");
        if n.offers.is_empty() {
            h.push_str("<p>No offer yet.</p>\n");
            return;
        }
        h.push_str("<table><tr><th>offer</th><th>round</th><th>by</th><th>answer</th>");
        for p in &n.parties {
            let _ = write!(h, "<th class=\"num\">utility of {}</th>", esc(p));
        }
        h.push_str("</tr>\n");
        for o in &n.offers {
            let answer = match (o.accepted_by.is_empty(), o.rejected_by.is_empty()) {
                (false, _) => format!("accepted by {}", o.accepted_by.join(", ")),
                (true, false) => format!("rejected by {}", o.rejected_by),
                (true, true) => String::new(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                o.id,
                o.round,
                esc(&o.proposer),
                esc(&answer)
            );
            for (i, p) in n.parties.iter().enumerate() {
                // Only the utilities the service gave this caller (those of parties it sees).
                let u = (o.evaluation.as_ref())
                    .and_then(|e| e.party_utilities.get(p).or_else(|| e.utilities.get(i)));
                let cell = u.map_or_else(
                    || "—".to_owned(),
                    |u| utility(&format!("offer-{}-utility-{p}", o.id), *u),
                );
                let _ = write!(h, "<td class=\"num\">{cell}</td>");
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
}

fn status(n: &npb::Negotiation) -> String {
    let status = npb::NegotiationStatus::try_from(n.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("NEGOTIATION_STATUS_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| "unknown".to_owned());
    match n.ended_because.is_empty() {
        true => status,
        false => format!("{status}: {}", n.ended_because),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_services_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert!(figure("a\"b", 1.5, "<1.5>".into())
            .contains(r#"data-figure="a&quot;b" data-value="1.5">&lt;1.5&gt;"#));
    }

    #[test]
    fn dollars_in_bn_or_m_with_a_sign() {
        assert_eq!(usd(-27.6e9), "-27.60 bn USD");
        assert_eq!(usd(74_074_000.0), "+74.1 m USD");
    }
}
