//! Query commands: quick looks at a running data service.

use tradepact_client::DEFAULT_DEADLINE;

use crate::connect::ClientArgs;
use tradepact_proto::data_v1 as pb;

/// Flags of `tradepact balance`.
#[derive(Clone, Debug, clap::Args)]
pub struct BalanceArgs {
    /// Reporting country (ISO alpha-3).
    pub reporter: String,
    /// Partner country (ISO alpha-3).
    pub partner: String,
    /// First period.
    #[arg(long, default_value = "")]
    pub from: String,
    /// Last period.
    #[arg(long, default_value = "")]
    pub to: String,
    /// The figures as of a release (its label) or a day (YYYY-MM-DD); none for the latest.
    #[arg(long, default_value = "")]
    pub as_of: String,
    /// The data service.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub data_service: String,
}

fn bn(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}", v / 1e9))
}

/// Billions to two decimals (reported balances are published to 10 million: 27.57).
fn bn2(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.2}", v / 1e9))
}

/// Prints goods, services and total balances in billions of US dollars, computed and as
/// reported.
pub async fn balance(c: &ClientArgs, args: BalanceArgs) -> anyhow::Result<()> {
    let mut client = c.data(&args.data_service).await?;
    let (as_of_release, as_of_date) = crate::vintage::as_of(&args.as_of);
    let request = pb::GetTradeBalanceRequest {
        reporter: args.reporter,
        partner: args.partner,
        start_period: args.from,
        end_period: args.to,
        as_of_release,
        as_of_date,
        ..Default::default()
    };
    let rows = client
        .get_trade_balance(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .rows;
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "period",
        "goods X",
        "goods M",
        "goods",
        "serv. X",
        "serv. M",
        "services",
        "total",
        "goods rep.",
        "total rep."
    );
    for r in rows {
        let (g, s, t) = (
            r.goods.unwrap_or_default(),
            r.services.unwrap_or_default(),
            r.total.unwrap_or_default(),
        );
        let releases = match r.releases.is_empty() {
            true => String::new(),
            false => format!("  {}", r.releases.join(", ")),
        };
        println!(
            "{:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}{releases}",
            r.period,
            bn(g.exports_usd),
            bn(g.imports_usd),
            bn(g.balance_usd),
            bn(s.exports_usd),
            bn(s.imports_usd),
            bn(s.balance_usd),
            bn(t.balance_usd),
            bn2(g.reported_balance_usd),
            bn2(t.reported_balance_usd)
        );
    }
    println!(
        "(billions of US dollars; '-' = input missing; rep. = as reported by the source; then the releases of the figures)"
    );
    Ok(())
}

/// Flags of `tradepact series`.
#[derive(Clone, Debug, clap::Args)]
pub struct SeriesArgs {
    /// Only series of this reporter.
    #[arg(long, default_value = "")]
    pub reporter: String,
    /// Only series with this product (a trailing * matches a prefix).
    #[arg(long, default_value = "")]
    pub product: String,
    /// The data service.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub data_service: String,
}

/// Lists every matching series, following pages.
pub async fn series(c: &ClientArgs, args: SeriesArgs) -> anyhow::Result<()> {
    let mut client = c.data(&args.data_service).await?;
    let mut page_token = String::new();
    loop {
        let request = pb::ListSeriesRequest {
            filter: Some(pb::SeriesFilter {
                reporter: args.reporter.clone(),
                product: args.product.clone(),
                measure: pb::Measure::Any.into(),
                ..Default::default()
            }),
            page_size: 1000,
            page_token,
        };
        let page = client
            .list_series(c.request(request, Some(DEFAULT_DEADLINE)))
            .await
            .map_err(|s| anyhow::anyhow!("{}", s.message()))?
            .into_inner();
        for s in page.series {
            let k = s.key.unwrap_or_default();
            let measure = match k.measure() {
                pb::Measure::Unspecified => String::new(),
                pb::Measure::Quantity => format!(" QUANTITY[{}]", k.quantity_unit),
                m => format!(" {}", m.as_str_name().trim_start_matches("MEASURE_")),
            };
            println!(
                "{}->{} {:<8} {:<8} {:<16} {:<10} {:>6} points {}..{}{measure}",
                k.reporter,
                k.partner,
                k.kind().as_str_name().trim_start_matches("TRADE_KIND_"),
                k.flow().as_str_name().trim_start_matches("FLOW_"),
                k.product,
                k.frequency().as_str_name().trim_start_matches("FREQUENCY_"),
                s.point_count,
                s.first_period,
                s.last_period
            );
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}

/// Flags of `tradepact top`.
#[derive(Clone, Debug, clap::Args)]
pub struct TopArgs {
    /// Reporting country.
    pub reporter: String,
    /// The flow summed (export, import, re-export, re-import), or `balance` for exports minus
    /// imports (deepest deficits first).
    #[arg(long, default_value = "import")]
    pub flow: String,
    /// The year.
    #[arg(long)]
    pub year: String,
    /// What to rank: partner, or product (HS chapters of every HS edition).
    #[arg(long, default_value = "partner")]
    pub by: String,
    /// How many.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    /// The data service.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub data_service: String,
}

/// Prints the top partners or products of a reporter's trade in a year, in billions of USD.
pub async fn top(c: &ClientArgs, args: TopArgs) -> anyhow::Result<()> {
    let (flows, balance) = match args.flow.to_ascii_lowercase().as_str() {
        "export" => (vec![pb::Flow::Export], false),
        "import" => (vec![pb::Flow::Import], false),
        "re-export" => (vec![pb::Flow::ReExport], false),
        "re-import" => (vec![pb::Flow::ReImport], false),
        "balance" => (vec![], true),
        other => anyhow::bail!("--flow {other:?}: export, import, re-export, re-import or balance"),
    };
    let (group_by, product_level, product_group_level) = match args.by.as_str() {
        "partner" => (pb::Dimension::Partner, 0, 0),
        "product" => (pb::Dimension::Product, 2, 2),
        other => anyhow::bail!("--by {other:?}: partner or product"),
    };
    let request = pb::QueryTradeRequest {
        reporters: vec![args.reporter],
        flows: flows.into_iter().map(Into::into).collect(),
        product_level,
        start_period: args.year.clone(),
        end_period: args.year,
        group_by: vec![group_by.into()],
        product_group_level,
        balance,
        order: if balance {
            pb::QueryOrder::Ascending
        } else {
            pb::QueryOrder::Descending
        }
        .into(),
        limit: args.limit,
        ..Default::default()
    };
    let mut client = c.data(&args.data_service).await?;
    let mut stream = client
        .query_trade(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    while let Some(message) = stream
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
    {
        for cell in message.cells {
            let gaps = match cell.missing_input_count {
                0 => String::new(),
                n => format!("  ({n} missing inputs)"),
            };
            println!("{:<14} {:>10}{gaps}", cell.group.join(" "), bn(cell.value));
        }
    }
    Ok(())
}
