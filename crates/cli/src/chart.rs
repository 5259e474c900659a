//! Charts as SVG or PNG (by the extension of `--out`), drawn with `plotters`:
//! - `tradepact chart balance`: a reporter's goods, services and total balance with a partner
//!   over the periods. A period without a figure is a gap in its line (never a zero); a figure
//!   between two gaps is drawn as a point. The caption names the releases the figures come
//!   from, with their sources.
//! - `tradepact chart negotiation`: a two-party negotiation's utility space as the analysis
//!   answers it: the Pareto frontier, the reservation values the caller may see, the Nash,
//!   Kalai–Smorodinsky, egalitarian and welfare points, and the offers so far as a path.
//! - `tradepact chart simulation`: a simulated negotiation between strategies, as each party's
//!   concession curve (its own utility of each offer it makes, by round) and the agreement.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use tradepact_client::DEFAULT_DEADLINE;
use tradepact_proto::data_v1 as pb;
use tradepact_proto::negotiation_v1 as npb;

use crate::connect::ClientArgs;

/// The image format of `out`, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
}

fn format_of(out: &Path) -> anyhow::Result<Format> {
    match out.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(Format::Svg),
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(Format::Png),
        _ => anyhow::bail!(
            "--out must name an .svg or a .png file, got {}",
            out.display()
        ),
    }
}

/// Text is set in DejaVu Sans, built in (the `dejavu` crate), so that a PNG looks the same on
/// every machine and text is measured the same way in both formats.
pub(crate) fn register_fonts() {
    static FONTS: std::sync::Once = std::sync::Once::new();
    FONTS.call_once(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            if plotters::style::register_font("sans-serif", style, bytes).is_err() {
                tracing::error!("the built-in DejaVu Sans font did not load");
            }
        }
    });
}

/// Runs `$body` with `$root` the drawing area of `$out` (SVG or PNG by its extension) of
/// `$size` pixels. A macro, not a function: plotters' backends are distinct types and the
/// drawing code is generic over them, which a closure cannot be.
macro_rules! render {
    ($out:expr, $size:expr, |$root:ident| $body:block) => {{
        let out: &Path = $out;
        register_fonts();
        match format_of(out)? {
            Format::Svg => {
                let $root = SVGBackend::new(out, $size).into_drawing_area();
                $body
            }
            Format::Png => {
                let $root = BitMapBackend::new(out, $size).into_drawing_area();
                $body
            }
        }
    }};
}

/// Flags of `tradepact chart balance`.
#[derive(Clone, Debug, clap::Args)]
pub struct BalanceChartArgs {
    #[command(flatten)]
    pub balance: crate::query::BalanceArgs,
    /// The file to write: .svg or .png.
    #[arg(long)]
    pub out: PathBuf,
}

/// One line of the chart: its name, colour and (period position, value) pairs.
struct Line {
    name: &'static str,
    colour: RGBColor,
    values: Vec<(i64, Option<f64>)>,
}

/// A period's position on a continuous axis: `2016` → 2016, `2016-Q3` → 2016·4+2, `2016-07`
/// → 2016·12+6 (the three frequencies are never mixed in one answer).
fn position(period: &str) -> Option<i64> {
    let year: i64 = period.get(..4)?.parse().ok()?;
    match period.get(4..) {
        Some("") => Some(year),
        Some(rest) => match rest.strip_prefix("-Q") {
            Some(q) => Some(year * 4 + q.parse::<i64>().ok()? - 1),
            None => Some(year * 12 + rest.strip_prefix('-')?.parse::<i64>().ok()? - 1),
        },
        None => None,
    }
}

/// Runs of consecutive positions with a value: each run is drawn as one line.
fn runs(values: &[(i64, Option<f64>)]) -> Vec<Vec<(i64, f64)>> {
    let mut out: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut last: Option<i64> = None;
    for &(x, v) in values {
        match v {
            Some(v) if last == Some(x - 1) => out.last_mut().expect("a run").push((x, v)),
            Some(v) => out.push(vec![(x, v)]),
            None => {}
        }
        last = v.map(|_| x);
    }
    out
}

/// Fetches the balance and its releases, draws the chart into `args.out`.
pub async fn balance(c: &ClientArgs, args: BalanceChartArgs) -> anyhow::Result<()> {
    format_of(&args.out)?;
    let b = &args.balance;
    let mut client = c.data(&b.data_service).await?;
    let (as_of_release, as_of_date) = crate::vintage::as_of(&b.as_of);
    let request = pb::GetTradeBalanceRequest {
        reporter: b.reporter.clone(),
        partner: b.partner.clone(),
        start_period: b.from.clone(),
        end_period: b.to.clone(),
        as_of_release,
        as_of_date,
        ..Default::default()
    };
    let rows = (client.get_trade_balance(c.request(request, Some(DEFAULT_DEADLINE))))
        .await
        .map_err(failed)?
        .into_inner()
        .rows;
    anyhow::ensure!(
        !rows.is_empty(),
        "no balance of {} with {} in that range",
        b.reporter,
        b.partner
    );
    let used: BTreeSet<String> = rows.iter().flat_map(|r| r.releases.clone()).collect();
    let releases = (client
        .list_releases(c.request(pb::ListReleasesRequest::default(), Some(DEFAULT_DEADLINE))))
    .await
    .map_err(failed)?
    .into_inner()
    .releases;
    let cited: Vec<String> = (releases.into_iter())
        .filter_map(|r| r.release)
        .filter(|r| used.contains(&r.label))
        .map(|r| match r.source.is_empty() {
            true => format!("{} ({})", r.label, r.date),
            false => format!("{} ({}): {}", r.label, r.date, r.source),
        })
        .collect();

    let mut periods = Vec::new();
    let figure = |pick: fn(&pb::BalanceRow) -> Option<&pb::BalanceFigures>| {
        (rows.iter())
            .filter_map(|r| Some((position(&r.period)?, pick(r).and_then(|f| f.balance_usd))))
            .map(|(x, v)| (x, v.map(|v| v / 1e9)))
            .collect::<Vec<_>>()
    };
    for r in &rows {
        if let Some(x) = position(&r.period) {
            periods.push((x, r.period.clone()));
        }
    }
    let lines = [
        Line {
            name: "goods",
            colour: RGBColor(31, 119, 180),
            values: figure(|r| r.goods.as_ref()),
        },
        Line {
            name: "services",
            colour: RGBColor(44, 160, 44),
            values: figure(|r| r.services.as_ref()),
        },
        Line {
            name: "goods and services",
            colour: RGBColor(214, 39, 40),
            values: figure(|r| r.total.as_ref()),
        },
    ];
    let title = format!(
        "{} trade balance with {}, bn USD{}",
        b.reporter,
        b.partner,
        match b.as_of.is_empty() {
            true => String::new(),
            false => format!(", as of {}", b.as_of),
        }
    );
    draw(&args.out, &title, &periods, &lines, &cited)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Flags of `tradepact chart negotiation`.
#[derive(Clone, Debug, clap::Args)]
pub struct NegotiationChartArgs {
    /// Negotiation id (e.g. neg-000001).
    pub id: String,
    /// The file to write: .svg or .png.
    #[arg(long)]
    pub out: PathBuf,
    /// The negotiation service.
    #[arg(
        long,
        env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub negotiation_service: String,
}

/// Frontier points drawn at most (the frontier of a large space is read page by page).
const FRONTIER_POINTS: usize = 20_000;

/// Outcomes drawn one by one up to this many; a density beyond.
const DOTS: u64 = 5_000;
/// Outcomes evaluated for a density at most (all of them below, a uniform sample above).
const DENSITY_OUTCOMES: u64 = 1_000_000;
/// Cells of the density grid per axis.
const DENSITY_CELLS: usize = 80;

/// The outcomes inside the frontier, as the chart draws them.
pub(crate) enum Outcomes {
    /// Not drawn: the caller does not see both positions.
    Hidden,
    /// Every outcome's utilities.
    Dots(Vec<(f64, f64)>),
    /// How many outcomes fall in each cell of a grid over [0, ideal·1.05]², by column.
    Density {
        cells: Vec<Vec<u32>>,
        evaluated: u64,
        sampled: bool,
    },
}

/// Every outcome of a two-party negotiation whose positions the caller sees, evaluated with
/// the service's own model (the `tradepact-bargain` crate): each one for a small space, else a
/// density of all of them or of a uniform sample of [`DENSITY_OUTCOMES`], over the chart's
/// axes (up to each party's `ideal`, plus 5 %).
fn every_outcome(n: &npb::Negotiation, ideal: &[f64]) -> Outcomes {
    use tradepact_bargain::{space, Position};
    let issues = crate::scenario::issues_of(n);
    let Ok(outcome_space) = space::OutcomeSpace::new(issues) else {
        return Outcomes::Hidden;
    };
    let position = |party: &str| {
        let p = (n.positions.iter())
            .find(|p| p.party == party)?
            .position
            .as_ref()?;
        Position::new(&outcome_space, &crate::scenario::spec_of(p)).ok()
    };
    let (Some(a), Some(b)) = (position(&n.parties[0]), position(&n.parties[1])) else {
        return Outcomes::Hidden;
    };
    let utilities = |p: &space::Package| (a.utility(p), b.utility(p));
    let size = outcome_space.size();
    if size <= DOTS as f64 {
        return Outcomes::Dots(outcome_space.packages().map(|p| utilities(&p)).collect());
    }
    // The chart's axes: up to each party's ideal, plus 5 %.
    let top = |i: usize| ideal.get(i).copied().unwrap_or(1.0).max(1e-9) * 1.05;
    let (top_a, top_b) = (top(0), top(1));
    let mut cells = vec![vec![0u32; DENSITY_CELLS]; DENSITY_CELLS];
    let mut count = |(ua, ub): (f64, f64)| {
        let cell =
            |u: f64, top: f64| ((u / top * DENSITY_CELLS as f64) as usize).min(DENSITY_CELLS - 1);
        cells[cell(ua, top_a)][cell(ub, top_b)] += 1;
    };
    let sampled = size > DENSITY_OUTCOMES as f64;
    let evaluated = if sampled {
        let mut rng = tradepact_bargain::rng::SplitMix64::new(1);
        let sizes: Vec<u64> = (outcome_space.issues().iter())
            .map(|i| i.options.len() as u64)
            .collect();
        for _ in 0..DENSITY_OUTCOMES {
            let package = space::Package(sizes.iter().map(|&k| rng.below(k) as u16).collect());
            count(utilities(&package));
        }
        DENSITY_OUTCOMES
    } else {
        outcome_space
            .packages()
            .map(|p| count(utilities(&p)))
            .count() as u64
    };
    Outcomes::Density {
        cells,
        evaluated,
        sampled,
    }
}

/// Fetches the negotiation and its analysis, draws the utility space into `args.out`.
pub async fn negotiation(c: &ClientArgs, args: NegotiationChartArgs) -> anyhow::Result<()> {
    format_of(&args.out)?;
    let mut client = c.negotiation(&args.negotiation_service).await?;
    let negotiation = fetch_negotiation(c, &mut client, &args.id, true).await?;
    let seen: Vec<&npb::PartyPosition> = (negotiation.positions.iter())
        .filter(|p| p.position.is_some())
        .collect();
    match seen.as_slice() {
        _ if seen.len() == negotiation.parties.len() => {
            let (space, _) = utility_space(c, &mut client, &negotiation).await?;
            render!(&args.out, space.size(), |root| { draw_space(&root, &space)? });
        }
        [one] => {
            let side = one_side(&negotiation, one);
            render!(&args.out, (900, 560), |root| { draw_side(&root, &side)? });
        }
        _ => anyhow::bail!(
            "this caller sees {} of the {} positions of {}: the utility space needs every party's (scope negotiation:all-parties, or each party's negotiation:position:PARTY), one party's side needs exactly that party's",
            seen.len(),
            negotiation.parties.len(),
            negotiation.id
        ),
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

/// One party's side of a negotiation, for a caller who sees only its position: its utility of
/// each offer (as the service gave it to this caller) and its reservation value.
struct Side {
    title: String,
    party: String,
    reservation: f64,
    /// (offer id, utility), own offers and the others' apart.
    own: Vec<(f64, f64)>,
    others: Vec<(f64, f64)>,
    notes: Vec<String>,
}

fn one_side(n: &npb::Negotiation, seen: &npb::PartyPosition) -> Side {
    let party = seen.party.clone();
    let utility = |o: &npb::Offer| {
        let u = (o.evaluation.as_ref()).and_then(|e| e.party_utilities.get(&party).copied())?;
        Some((f64::from(o.id), u))
    };
    let own = (n.offers.iter())
        .filter(|o| o.proposer == party)
        .filter_map(utility)
        .collect();
    let others = (n.offers.iter())
        .filter(|o| o.proposer != party)
        .filter_map(utility)
        .collect();
    let hidden: Vec<&str> = (n.parties.iter())
        .map(String::as_str)
        .filter(|p| *p != party)
        .collect();
    Side {
        title: format!("{}: {party}'s side", n.title),
        reservation: seen.position.as_ref().map_or(0.0, |p| p.reservation_value),
        own,
        others,
        notes: vec![
            format!(
                "Only the side of {party}: the positions of {} are not visible to this caller, so the utility space, the frontier and the solutions are left out",
                hidden.join(", ")
            ),
            "(they need every party's position: scope negotiation:all-parties, or each party's negotiation:position:PARTY).".to_owned(),
            format!("{party}'s utility of each offer; its reservation value dashed."),
        ],
        party,
    }
}

/// Draws `side` on `root`.
fn draw_side<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    side: &Side,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let error = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}'s side: {e}", side.party);
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let (plot, below) = root.split_vertically(500);
    let last = (side.own.iter().chain(&side.others))
        .map(|(x, _)| *x)
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&plot)
        .caption(&side.title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..last + 1.0, 0.0..1.05)
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("offer")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(format!("utility of {}", side.party))
        .draw()
        .map_err(|e| error(&e))?;
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, side.reservation), (last + 1.0, side.reservation)],
            6,
            4,
            grey.into(),
        ))
        .map_err(|e| error(&e))?;
    for (name, colour, points) in [
        ("its own offers", RGBColor(31, 119, 180), &side.own),
        ("the others' offers", RGBColor(214, 39, 40), &side.others),
    ] {
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| error(&e))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, colour.filled()));
    }
    legend(&mut chart)?;
    caption(&below, &side.notes).map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}

/// A two-party utility space as the analysis answers it, ready to draw.
pub(crate) struct Space {
    title: String,
    outcomes: Outcomes,
    parties: [String; 2],
    ideal: Vec<f64>,
    /// Each party's reservation value, when the caller may see its position.
    reservations: [Option<f64>; 2],
    frontier: Vec<(f64, f64)>,
    offers: Vec<(f64, f64)>,
    solutions: Vec<Marked>,
    notes: Vec<String>,
}

impl Space {
    /// Its size in pixels.
    pub(crate) fn size(&self) -> (u32, u32) {
        (760, 700 + 18 * self.notes.len() as u32)
    }
}

/// The utility space of `negotiation` (two parties) and the analysis's first page: the
/// frontier read page by page, up to [`FRONTIER_POINTS`].
pub(crate) async fn utility_space(
    c: &ClientArgs,
    client: &mut tradepact_client::negotiation::NegotiationClient,
    negotiation: &npb::Negotiation,
) -> anyhow::Result<(Space, npb::AnalyzeNegotiationResponse)> {
    anyhow::ensure!(
        negotiation.parties.len() == 2,
        "the utility space is drawn for two parties; {} has {}",
        negotiation.id,
        negotiation.parties.len()
    );
    let mut request = npb::AnalyzeNegotiationRequest {
        id: negotiation.id.clone(),
        page_size: 1000,
        ..Default::default()
    };
    let mut analysis = None::<npb::AnalyzeNegotiationResponse>;
    let mut frontier = Vec::new();
    loop {
        let page = (client.analyze_negotiation(c.request(request.clone(), Some(HEAVY_DEADLINE))))
            .await
            .map_err(failed)?
            .into_inner();
        frontier.extend(page.frontier.iter().filter_map(|p| pair(&p.utilities)));
        request.page_token = page.next_page_token.clone();
        analysis.get_or_insert(page);
        if request.page_token.is_empty() || frontier.len() >= FRONTIER_POINTS {
            break;
        }
    }
    let analysis = analysis.expect("one page");
    frontier.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A party's reservation value, when the caller may see its position.
    let reservation = |party: &str| {
        (negotiation.positions.iter())
            .find(|p| p.party == party)
            .and_then(|p| p.position.as_ref())
            .map(|p| p.reservation_value)
    };
    let (a, b) = (&negotiation.parties[0], &negotiation.parties[1]);
    let solutions: Vec<Marked> = [
        ("Nash", RGBColor(214, 39, 40), &analysis.nash),
        (
            "Kalai-Smorodinsky",
            RGBColor(148, 103, 189),
            &analysis.kalai_smorodinsky,
        ),
        ("egalitarian", RGBColor(44, 160, 44), &analysis.egalitarian),
        ("max welfare", RGBColor(255, 127, 14), &analysis.max_welfare),
    ]
    .into_iter()
    .map(|(name, colour, s)| {
        let points = (s.iter().flat_map(|s| &s.points))
            .filter_map(|p| pair(&p.utilities))
            .collect();
        (name, colour, points)
    })
    .collect();
    let offers: Vec<(f64, f64)> = (analysis.offers.iter())
        .filter_map(|o| pair(&o.utilities))
        .collect();
    let title = format!("{}: utility of {a} and {b}", negotiation.title);
    let outcomes = every_outcome(negotiation, &analysis.ideal);
    let mut notes = vec![format!(
        "{:.0} outcomes, {:.0} in the ZOPA ({}), {} on the Pareto frontier{}.",
        analysis.outcome_count,
        analysis.zopa_size,
        if analysis.zopa_exact {
            "exact"
        } else {
            "estimated"
        },
        analysis.frontier_size,
        match frontier.len() < analysis.frontier_size as usize {
            true => format!(" (the first {} drawn)", frontier.len()),
            false => String::new(),
        },
    )];
    notes.push(match &outcomes {
        Outcomes::Hidden => {
            "Outcomes inside the frontier not drawn (that needs both positions).".to_owned()
        }
        Outcomes::Dots(dots) => format!("Every outcome drawn ({} grey squares).", dots.len()),
        Outcomes::Density {
            evaluated, sampled, ..
        } => format!(
            "The density of {evaluated} outcomes in grey ({}; darker: more outcomes).",
            match sampled {
                true => "a uniform sample, seed 1",
                false => "all of them",
            }
        ),
    });
    for party in [a, b] {
        notes.push(match reservation(party) {
            Some(r) => format!("{party}: reservation value {r:.3} (dashed)"),
            None => format!("{party}: position not visible to this caller, no reservation line"),
        });
    }
    notes.push(format!("{} offers so far (grey path)", offers.len()));

    let space = Space {
        title,
        outcomes,
        parties: [a.clone(), b.clone()],
        ideal: analysis.ideal.clone(),
        reservations: [reservation(a), reservation(b)],
        frontier,
        offers,
        solutions,
        notes,
    };
    Ok((space, analysis))
}

/// Draws `space` on `root`.
pub(crate) fn draw_space<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    space: &Space,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let Space {
        title,
        parties: [a, b],
        frontier,
        offers,
        solutions,
        notes,
        ..
    } = space;
    let error = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the utility space: {e}");
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let (plot, below) = root.split_vertically(700);
    let top = |i: usize| space.ideal.get(i).copied().unwrap_or(1.0).max(1e-9) * 1.05;
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..top(0), 0.0..top(1))
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc(format!("utility of {a}"))
        .y_desc(format!("utility of {b}"))
        .draw()
        .map_err(|e| error(&e))?;
    let grey = RGBColor(120, 120, 120);
    if let Some(r) = space.reservations[0] {
        chart
            .draw_series(DashedLineSeries::new(
                [(r, 0.0), (r, top(1))],
                6,
                4,
                grey.into(),
            ))
            .map_err(|e| error(&e))?;
    }
    if let Some(r) = space.reservations[1] {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, r), (top(0), r)],
                6,
                4,
                grey.into(),
            ))
            .map_err(|e| error(&e))?;
    }
    match &space.outcomes {
        Outcomes::Hidden => {}
        Outcomes::Dots(dots) => {
            let style = RGBColor(150, 150, 150).filled();
            chart
                .draw_series(
                    dots.iter()
                        .map(|&p| EmptyElement::at(p) + Rectangle::new([(-1, -1), (1, 1)], style)),
                )
                .map_err(|e| error(&e))?;
        }
        Outcomes::Density { cells, .. } => {
            let most = cells.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
            let (w, h) = (top(0) / DENSITY_CELLS as f64, top(1) / DENSITY_CELLS as f64);
            let shaded = cells.iter().enumerate().flat_map(|(i, column)| {
                column
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(move |(j, &n)| {
                        // Shade by the logarithm of the count: a few outcomes still show.
                        let shade = 0.12 + 0.6 * (1.0 + n as f64).ln() / (1.0 + most).ln();
                        let (x, y) = (i as f64 * w, j as f64 * h);
                        Rectangle::new([(x, y), (x + w, y + h)], BLACK.mix(shade).filled())
                    })
            });
            chart.draw_series(shaded).map_err(|e| error(&e))?;
        }
    }
    let blue = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            frontier.iter().copied(),
            blue.stroke_width(2),
        ))
        .map_err(|e| error(&e))?
        .label("Pareto frontier")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], blue.stroke_width(2)));
    chart
        .draw_series(frontier.iter().map(|&p| Circle::new(p, 2, blue.filled())))
        .map_err(|e| error(&e))?;
    if !offers.is_empty() {
        chart
            .draw_series(LineSeries::new(
                offers.iter().copied(),
                grey.stroke_width(1),
            ))
            .map_err(|e| error(&e))?
            .label("offers")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], grey));
        chart
            .draw_series(
                offers
                    .iter()
                    .map(|&p| Cross::new(p, 4, grey.stroke_width(1))),
            )
            .map_err(|e| error(&e))?;
    }
    // The Nash point last, as a ring, so that it shows where another solution coincides.
    for (name, colour, points) in solutions.iter().rev() {
        if points.is_empty() {
            continue;
        }
        let colour = *colour;
        if *name == "Nash" {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 9, colour.stroke_width(2))),
                )
                .map_err(|e| error(&e))?
                .label(*name)
                .legend(move |(x, y)| Circle::new((x + 9, y), 6, colour.stroke_width(2)));
        } else {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 7, colour.filled())),
                )
                .map_err(|e| error(&e))?
                .label(*name)
                .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 6, colour.filled()));
        }
    }
    legend(&mut chart)?;
    caption(&below, notes).map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}

/// Flags of `tradepact chart simulation`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulationChartArgs {
    #[command(flatten)]
    pub run: crate::simulate::Run,
    /// The file to write: .svg or .png.
    #[arg(long)]
    pub out: PathBuf,
}

/// A strategy from its name (`boulware`: exponent 0.2, `linear` 1, `conceder` 5, a number,
/// `tit-for-tat`, `zeuthen`).
pub(crate) fn strategy(name: &str) -> anyhow::Result<npb::Strategy> {
    use npb::strategy::Kind;
    let kind = match name.trim() {
        "boulware" => Kind::TimeBasedExponent(0.2),
        "linear" => Kind::TimeBasedExponent(1.0),
        "conceder" => Kind::TimeBasedExponent(5.0),
        "tit-for-tat" => Kind::TitForTat(true),
        "zeuthen" => Kind::Zeuthen(true),
        other => Kind::TimeBasedExponent(other.parse().map_err(|_| {
            anyhow::anyhow!(
                "strategy {other:?}: boulware, linear, conceder, a number, tit-for-tat or zeuthen"
            )
        })?),
    };
    Ok(npb::Strategy { kind: Some(kind) })
}

/// Runs the simulation (not recorded) and draws each party's concession curve.
pub async fn simulation(c: &ClientArgs, args: SimulationChartArgs) -> anyhow::Result<()> {
    format_of(&args.out)?;
    let mut client = c.negotiation(&args.run.negotiation_service).await?;
    let negotiation = fetch_negotiation(c, &mut client, &args.run.id, false).await?;
    let request = args.run.request(negotiation.parties.len(), false)?;
    let mut stream = (client.simulate_negotiation(c.request(request, Some(HEAVY_DEADLINE))))
        .await
        .map_err(failed)?
        .into_inner();
    let parties = &negotiation.parties;
    let mut curves: Vec<Vec<(f64, f64)>> = vec![Vec::new(); parties.len()];
    let mut outcome = None;
    while let Some(message) = stream.message().await.map_err(failed)? {
        match message.event {
            Some(npb::simulate_negotiation_response::Event::Step(step)) if !step.accepted => {
                let Some(i) = parties.iter().position(|p| *p == step.party) else {
                    continue;
                };
                if let Some(&u) = step.utilities.get(i) {
                    curves[i].push((f64::from(step.round), u));
                }
            }
            Some(npb::simulate_negotiation_response::Event::Outcome(o)) => outcome = Some(o),
            _ => {}
        }
    }
    let outcome =
        outcome.ok_or_else(|| anyhow::anyhow!("the simulation ended without an outcome"))?;
    let rounds = curves
        .iter()
        .flatten()
        .map(|(r, _)| *r)
        .fold(1.0f64, f64::max);
    let title = format!(
        "{}: {} ({})",
        negotiation.title,
        args.run.strategies.replace(',', " vs "),
        match outcome.agreed {
            true => format!("agreed after {} turns", outcome.turns),
            false => format!("no agreement: {}", outcome.reason),
        }
    );
    render!(&args.out, (900, 560), |root| {
        let error =
            |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", args.out.display());
        root.fill(&WHITE).map_err(|e| error(&e))?;
        let (plot, below) = root.split_vertically(520);
        let mut chart = ChartBuilder::on(&plot)
            .caption(&title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..rounds + 1.0, 0.0..1.05)
            .map_err(|e| error(&e))?;
        chart
            .configure_mesh()
            .x_desc("round")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc("the proposer's utility of its offer")
            .draw()
            .map_err(|e| error(&e))?;
        let colours = [
            RGBColor(31, 119, 180),
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
            RGBColor(148, 103, 189),
        ];
        for (i, curve) in curves.iter().enumerate() {
            let colour = colours[i % colours.len()];
            chart
                .draw_series(LineSeries::new(
                    curve.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| error(&e))?
                .label(parties[i].as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(curve.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| error(&e))?;
            if let (true, Some(&u), Some(&(last, _))) =
                (outcome.agreed, outcome.utilities.get(i), curve.last())
            {
                chart
                    .draw_series([Circle::new((last, u), 8, colour.stroke_width(2))])
                    .map_err(|e| error(&e))?;
            }
        }
        legend(&mut chart)?;
        let utilities: Vec<String> = (parties.iter().zip(&outcome.utilities))
            .map(|(p, u)| format!("{p} {u:.3}"))
            .collect();
        let note = format!(
            "Seed {}; the agreement's utilities (rings): {}.",
            args.run.seed,
            utilities.join(", ")
        );
        caption(&below, &[note]).map_err(|e| error(&e))?;
        root.present().map_err(|e| error(&e))?;
    });
    println!("wrote {}", args.out.display());
    Ok(())
}

/// How long an analysis or a simulation may take (the service bounds it too).
pub(crate) const HEAVY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// A failed call as the error the CLI prints (the service's message).
pub(crate) fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

/// The negotiation `id` (with the positions the caller may see, when asked).
pub(crate) async fn fetch_negotiation(
    c: &ClientArgs,
    client: &mut tradepact_client::negotiation::NegotiationClient,
    id: &str,
    include_positions: bool,
) -> anyhow::Result<npb::Negotiation> {
    let request = npb::GetNegotiationRequest {
        id: id.to_owned(),
        include_positions,
    };
    (client.get_negotiation(c.request(request, Some(DEFAULT_DEADLINE))))
        .await
        .map_err(failed)?
        .into_inner()
        .negotiation
        .ok_or_else(|| anyhow::anyhow!("no negotiation {id}"))
}

/// The legend box every chart draws, lower left.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(|e| anyhow::anyhow!("drawing the legend: {e}"))
}

/// A bargaining solution's name, colour and points.
type Marked = (&'static str, RGBColor, Vec<(f64, f64)>);

/// The two utilities of a point (the chart is for two parties).
fn pair(utilities: &[f64]) -> Option<(f64, f64)> {
    match utilities {
        [a, b] => Some((*a, *b)),
        _ => None,
    }
}

/// Lines of small text under a chart, each clipped to the width.
fn caption<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    lines: &[String],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (i, line) in lines.iter().enumerate() {
        let clipped: String = match line.chars().count() > 118 {
            true => line.chars().take(117).chain(['…']).collect(),
            false => line.clone(),
        };
        area.draw(&Text::new(
            clipped,
            (16, 4 + 18 * i as i32),
            ("sans-serif", 13).into_font().color(&BLACK.mix(0.75)),
        ))?;
    }
    Ok(())
}

fn draw(
    out: &Path,
    title: &str,
    periods: &[(i64, String)],
    lines: &[Line],
    cited: &[String],
) -> anyhow::Result<()> {
    let caption_lines = 1 + cited.len();
    let height = 480 + 18 * caption_lines as u32;
    render!(out, (900, height), |root| {
        let error = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", out.display());
        root.fill(&WHITE).map_err(|e| error(&e))?;
        let (plot, notes) = root.split_vertically(480);
        let values = lines
            .iter()
            .flat_map(|l| l.values.iter().filter_map(|(_, v)| *v));
        let (low, high) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let pad = ((high - low) * 0.08).max(1.0);
        let first = periods.iter().map(|(x, _)| *x).min().unwrap_or(0);
        let last = periods.iter().map(|(x, _)| *x).max().unwrap_or(0);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(first - 1..last + 1, (low - pad)..(high + pad))
            .map_err(|e| error(&e))?;
        // Annual positions are years: a year without a row is labelled too.
        let annual = periods.iter().all(|(_, label)| label.len() == 4);
        let label_of = |x: &i64| match (periods.iter()).find(|(p, _)| p == x) {
            Some((_, label)) => label.clone(),
            None if annual && (first..=last).contains(x) => x.to_string(),
            None => String::new(),
        };
        chart
            .configure_mesh()
            .x_labels(periods.len().min(20) + 2)
            .x_label_formatter(&label_of)
            .y_desc("bn USD")
            .draw()
            .map_err(|e| error(&e))?;
        chart
            .draw_series(LineSeries::new(
                [(first - 1, 0.0), (last + 1, 0.0)],
                BLACK.mix(0.4),
            ))
            .map_err(|e| error(&e))?;
        for line in lines {
            let style = line.colour.stroke_width(2);
            let mut legend = true;
            for run in runs(&line.values) {
                let drawn = chart
                    .draw_series(LineSeries::new(run.clone(), style))
                    .map_err(|e| error(&e))?;
                if legend {
                    let colour = line.colour;
                    drawn.label(line.name).legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
                    legend = false;
                }
                chart
                    .draw_series(
                        run.iter()
                            .map(|&(x, v)| Circle::new((x, v), 3, line.colour.filled())),
                    )
                    .map_err(|e| error(&e))?;
            }
        }
        legend(&mut chart)?;
        let mut text = vec!["A gap is a period without a figure (never a zero).".to_owned()];
        text.extend(cited.iter().map(|c| format!("Release {c}")));
        caption(&notes, &text).map_err(|e| error(&e))?;
        root.present().map_err(|e| error(&e))?;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A negotiation of `issues` issues of `options` options, both positions visible: the US
    /// values option k of every issue at k/(options-1), Korea the reverse, equal weights.
    fn negotiation(issues: usize, options: usize) -> npb::Negotiation {
        let ids: Vec<String> = (0..issues).map(|i| format!("i{i}")).collect();
        let position = |reverse: bool| npb::Position {
            weights: ids.iter().map(|i| (i.clone(), 1.0)).collect(),
            values: (ids.iter())
                .map(|i| {
                    let values = (0..options)
                        .map(|k| {
                            let v = k as f64 / (options - 1) as f64;
                            (format!("o{k}"), if reverse { 1.0 - v } else { v })
                        })
                        .collect();
                    (i.clone(), npb::OptionValues { values })
                })
                .collect(),
            reservation_value: 0.0,
        };
        npb::Negotiation {
            parties: vec!["US".into(), "KOR".into()],
            issues: (ids.iter())
                .map(|id| npb::Issue {
                    id: id.clone(),
                    label: id.clone(),
                    options: (0..options)
                        .map(|k| npb::IssueOption {
                            id: format!("o{k}"),
                            label: format!("o{k}"),
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect(),
            positions: vec![
                npb::PartyPosition {
                    party: "US".into(),
                    position: Some(position(false)),
                },
                npb::PartyPosition {
                    party: "KOR".into(),
                    position: Some(position(true)),
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_small_space_is_drawn_outcome_by_outcome() {
        let Outcomes::Dots(dots) = every_outcome(&negotiation(2, 3), &[1.0, 1.0]) else {
            panic!("9 outcomes are drawn one by one");
        };
        assert_eq!(dots.len(), 9);
        // Opposed values: every outcome's utilities sum to 1; the US's best is (1, 0).
        assert!(dots.iter().all(|(a, b)| (a + b - 1.0).abs() < 1e-9));
        assert!(dots.contains(&(1.0, 0.0)) && dots.contains(&(0.0, 1.0)));
    }

    #[test]
    fn a_large_space_is_a_density_of_all_or_of_a_sample() {
        let count = |o: &Outcomes| match o {
            Outcomes::Density {
                cells,
                evaluated,
                sampled,
            } => (
                cells.iter().flatten().map(|&n| u64::from(n)).sum::<u64>(),
                *evaluated,
                *sampled,
            ),
            _ => panic!("a density"),
        };
        // 100² = 10,000 outcomes: all of them.
        assert_eq!(
            count(&every_outcome(&negotiation(2, 100), &[1.0, 1.0])),
            (10_000, 10_000, false)
        );
        // 100³ = 10^6 + … : a sample of 10^6.
        let sampled = every_outcome(&negotiation(4, 100), &[1.0, 1.0]);
        assert_eq!(count(&sampled), (DENSITY_OUTCOMES, DENSITY_OUTCOMES, true));
        // Opposed values: every outcome is on the anti-diagonal, so no cell far above it.
        let Outcomes::Density { cells, .. } = sampled else {
            unreachable!()
        };
        let n = DENSITY_CELLS;
        assert_eq!(cells[n - 1][n - 1] + cells[0][0], 0);
    }

    #[test]
    fn one_hidden_position_hides_the_outcomes() {
        let mut n = negotiation(2, 3);
        n.positions[1].position = None;
        assert!(matches!(every_outcome(&n, &[1.0, 1.0]), Outcomes::Hidden));
    }

    #[test]
    fn periods_have_positions_in_their_frequency() {
        assert_eq!(position("2016"), Some(2016));
        assert_eq!(position("2016-Q1"), Some(2016 * 4));
        assert_eq!(position("2016-12"), Some(2016 * 12 + 11));
        assert_eq!(position("16"), None);
    }

    #[test]
    fn a_missing_period_breaks_the_line() {
        let values = [
            (2011, Some(-13.5)),
            (2012, None),
            (2013, Some(-20.7)),
            (2014, Some(-25.0)),
            // 2015 has no row at all: also a gap.
            (2016, Some(-27.6)),
            (2017, Some(-22.9)),
        ];
        let runs = runs(&values);
        let xs: Vec<Vec<i64>> = runs
            .iter()
            .map(|r| r.iter().map(|(x, _)| *x).collect())
            .collect();
        assert_eq!(xs, vec![vec![2011], vec![2013, 2014], vec![2016, 2017]]);
    }
}
