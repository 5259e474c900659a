//! Release (vintage) commands: the releases a store holds, what changed between two, and the
//! verification of a stopped store's chunks.

use std::path::Path;

use tradepact_client::DEFAULT_DEADLINE;
use tradepact_proto::data_v1 as pb;

use crate::connect::ClientArgs;

/// A release label or a date (`YYYY-MM-DD`) as (release, date) request fields; empty for the
/// latest figures.
pub fn as_of(text: &str) -> (String, String) {
    match tradepact_model::release::parse_date(text) {
        Ok(_) => (String::new(), text.to_owned()),
        Err(_) => (text.to_owned(), String::new()),
    }
}

/// Flags of `tradepact releases`.
#[derive(Clone, Debug, clap::Args)]
pub struct ReleasesArgs {
    /// Only releases with values in series of this reporter.
    #[arg(long, default_value = "")]
    pub reporter: String,
    /// Only releases with values in series with this partner.
    #[arg(long, default_value = "")]
    pub partner: String,
    /// The data service.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub data_service: String,
}

/// Prints the releases, in release order.
pub async fn releases(c: &ClientArgs, args: ReleasesArgs) -> anyhow::Result<()> {
    let counted = !args.reporter.is_empty() || !args.partner.is_empty();
    let request = pb::ListReleasesRequest {
        filter: counted.then(|| pb::SeriesFilter {
            reporter: args.reporter,
            partner: args.partner,
            measure: pb::Measure::Any.into(),
            ..Default::default()
        }),
    };
    let mut client = c.data(&args.data_service).await?;
    let releases = client
        .list_releases(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .releases;
    for r in releases {
        let release = r.release.unwrap_or_default();
        let values = match counted {
            true => format!("{:>6} values  ", r.values),
            false => String::new(),
        };
        println!(
            "{}  {:<28} {values}{}",
            release.date, release.label, release.source
        );
    }
    Ok(())
}

/// Flags of `tradepact revisions`.
#[derive(Clone, Debug, clap::Args)]
pub struct RevisionsArgs {
    /// Reporting country.
    pub reporter: String,
    /// Partner country; none for every partner.
    pub partner: Option<String>,
    /// The old side: a release label or a date (YYYY-MM-DD); none for the latest figures.
    #[arg(long, default_value = "")]
    pub from: String,
    /// The new side: a release label or a date; none for the latest figures.
    #[arg(long, default_value = "")]
    pub to: String,
    /// At most this many revisions.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// The data service.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub data_service: String,
}

fn figure(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.3}", v / 1e9))
}

/// Prints the points whose values differ between two releases, in billions.
pub async fn revisions(c: &ClientArgs, args: RevisionsArgs) -> anyhow::Result<()> {
    let ((from_release, from_date), (to_release, to_date)) = (as_of(&args.from), as_of(&args.to));
    let request = pb::DiffReleasesRequest {
        filter: Some(pb::SeriesFilter {
            reporter: args.reporter,
            partner: args.partner.unwrap_or_default(),
            measure: pb::Measure::Any.into(),
            ..Default::default()
        }),
        from_release,
        from_date,
        to_release,
        to_date,
        limit: args.limit,
    };
    let mut client = c.data(&args.data_service).await?;
    let diff = client
        .diff_releases(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    println!(
        "{:<52} {:<7} {:>9} {:>9} {:>9} {:>8}  release",
        "series", "period", "old", "new", "change", "%"
    );
    for r in &diff.revisions {
        let k = r.key.clone().unwrap_or_default();
        let measure = match k.measure() {
            pb::Measure::Unspecified => String::new(),
            m => format!(
                " {}",
                m.as_str_name()
                    .trim_start_matches("MEASURE_")
                    .to_lowercase()
            ),
        };
        let series = format!(
            "{}->{} {} {} {}{measure}",
            k.reporter,
            k.partner,
            k.kind().as_str_name().trim_start_matches("TRADE_KIND_"),
            k.flow().as_str_name().trim_start_matches("FLOW_"),
            k.product,
        );
        println!(
            "{series:<52} {:<7} {:>9} {:>9} {:>9} {:>8}  {}",
            r.period,
            figure(r.old_value),
            figure(r.new_value),
            figure(r.change),
            r.percent
                .map_or_else(|| "-".to_owned(), |p| format!("{p:+.2}")),
            r.release
        );
    }
    println!("(billions of the series' unit; '-' = no value on that side)");
    if diff.truncated {
        println!("(more revisions than --limit {})", args.limit);
    }
    Ok(())
}

/// Verifies a stopped store's chunks; fails when any is corrupt.
pub fn verify_store(dir: &Path) -> anyhow::Result<()> {
    let store = tradepact_data::open_store(dir)?;
    let verified = store
        .verify(|| false)
        .map_err(|e| anyhow::anyhow!("cannot verify the store in {}: {e}", dir.display()))?;
    for corrupt in &verified.corrupt {
        println!("corrupt: {corrupt}");
    }
    println!(
        "{} series, {} chunks, {} points, {} superseded values of earlier releases, {} bytes of keys and values; {} corrupt",
        verified.series,
        verified.chunks,
        verified.points,
        verified.history,
        verified.bytes,
        verified.corrupt.len()
    );
    anyhow::ensure!(
        verified.corrupt.is_empty(),
        "the store in {} has {} corrupt entries (listed above)",
        dir.display(),
        verified.corrupt.len()
    );
    Ok(())
}
