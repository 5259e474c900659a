//! `tradepact up` and `tradepact import`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::connect::ClientArgs;
use crate::import;
use tradepact_proto::data_v1 as pb;

/// Flags of `tradepact up`.
#[derive(Clone, Debug, clap::Args)]
pub struct UpArgs {
    /// Home of the embedded stores (the data service's store is HOME/trade, the negotiation
    /// service's event log HOME/negotiation); default: the
    /// user's data directory (e.g. ~/.local/share/tradepact), else ./data.
    #[arg(long, env = "TRADEPACT_HOME")]
    pub home: Option<PathBuf>,
    /// Address of the data service.
    #[arg(long, env = "TRADEPACT_DATA_LISTEN", default_value = tradepact_data::DEFAULT_LISTEN)]
    pub data_listen: String,
    /// Address of the negotiation service.
    #[arg(long, env = "TRADEPACT_NEGOTIATION_LISTEN", default_value = tradepact_negotiation::DEFAULT_LISTEN)]
    pub negotiation_listen: String,
    /// Do not load the KORUS sample dataset into an empty store.
    #[arg(long)]
    pub no_sample: bool,
    #[command(flatten)]
    pub limits: tradepact_rpc::LimitArgs,
    #[command(flatten)]
    pub store: tradepact_data::StoreArgs,
    /// One Prometheus endpoint for both services (their calls told apart by method).
    #[command(flatten)]
    pub metrics: tradepact_rpc::MetricsArgs,
    /// Web pages that may call both services (gRPC-Web).
    #[command(flatten)]
    pub cors: tradepact_rpc::CorsArgs,
    /// Cluster mode on this machine, to try it: a three-node NATS JetStream cluster
    /// (`nats-server` on the PATH), two data nodes and two negotiation replicas (state in
    /// HOME/cluster; the second node of each service on a free port, printed).
    #[arg(long)]
    pub cluster: bool,
    /// Snapshots of the data nodes (with --cluster).
    #[command(flatten)]
    pub snapshots: tradepact_data::SnapshotArgs,
}

fn default_home() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("tradepact"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Runs the services until SIGINT or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let home = args.home.clone().unwrap_or_else(default_home);
    tradepact_rpc::metrics::start(&args.metrics).await?;
    if args.cluster {
        return crate::cluster::run(args, &home).await;
    }
    let store = tradepact_data::open_store_with(&home.join("trade"), &args.store)?;
    let empty = store.is_empty()?;
    let log = tradepact_negotiation::Log::local(
        &home.join("negotiation"),
        tradepact_negotiation::RESERVE_MIB,
    )?;
    let listener = tradepact_rpc::server::bind(&args.data_listen).await?;
    let addr = listener.local_addr()?;
    let negotiation_listener = tradepact_rpc::server::bind(&args.negotiation_listen).await?;
    let negotiation_addr = negotiation_listener.local_addr()?;
    tracing::info!(home = %home.display(), "tradepact up");
    let limits = tradepact_rpc::Limits::from(&args.limits);
    let security = tradepact_rpc::Security {
        cors_origins: args.cors.header_values()?,
        ..Default::default()
    };
    // Both signal handlers are installed before the readiness line below.
    let data_shutdown = tradepact_rpc::server::shutdown_signal();
    let negotiation_shutdown = tradepact_rpc::server::shutdown_signal();
    let data_server = tokio::spawn(tradepact_data::serve(
        listener,
        store,
        limits,
        security.clone(),
        data_shutdown,
    ));
    let data_url = format!("http://{addr}");
    let negotiation_server = tokio::spawn({
        let data_url = data_url.clone();
        async move {
            tradepact_negotiation::serve(
                negotiation_listener,
                log,
                tradepact_negotiation::DataServiceConfig::plain(&data_url),
                limits,
                tradepact_negotiation::NegotiationLimits::default(),
                security,
                negotiation_shutdown,
            )
            .await
        }
    });
    if empty && !args.no_sample {
        load_sample(&data_url).await?;
    }
    tracing::info!(
        "ready: data service on http://{addr}, negotiation service on http://{negotiation_addr}; Ctrl-C to stop"
    );
    let (data, negotiation) = tokio::join!(data_server, negotiation_server);
    data??;
    negotiation??;
    Ok(())
}

/// Loads the KORUS sample dataset, its releases and tariff rates through the data service at
/// `data_url`.
pub async fn load_sample(data_url: &str) -> anyhow::Result<()> {
    let mut client = tradepact_client::data::connect(data_url).await?;
    let c = ClientArgs::default();
    // Tidy files (trade, then the tariff-line trade) and tariff ranges, each in one stream.
    let mut points = [0u64; 3];
    let files = [
        (crate::SAMPLE_CSV, "KORUS sample (datasets/korus_trade.csv)"),
        (
            crate::SAMPLE_LINES,
            "KORUS tariff lines (datasets/korus_lines.csv)",
        ),
        (
            crate::SAMPLE_TARIFFS,
            "KORUS tariffs (datasets/korus_tariffs.csv)",
        ),
    ];
    for (count, (text, name)) in points.iter_mut().zip(files) {
        let bytes = text.as_bytes();
        let len = bytes.len() as u64;
        let s = import::stream(&c, &mut client, bytes, name, len, false, None).await?;
        *count = s.inserted + s.updated;
    }
    let name = "KORUS releases (datasets/korus_releases.csv)";
    let releases = import_releases(&c, &mut client, crate::SAMPLE_RELEASES, name).await?;
    tracing::info!(
        points = points[0] + points[1],
        releases,
        tariff_rates = points[2],
        "the store was empty: loaded the KORUS sample dataset, its releases and tariff rates"
    );
    Ok(())
}

/// `tradepact import FILE…`
pub async fn import_files(
    c: &ClientArgs,
    url: &str,
    files: &[PathBuf],
    release: Option<pb::Release>,
) -> anyhow::Result<()> {
    let mut client = c.data(url).await?;
    let progress = std::io::stderr().is_terminal();
    for path in files {
        let mut head = [0u8; 64];
        let open = |path: &Path| {
            std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
        };
        let n = std::io::Read::read(&mut open(path)?, &mut head)?;
        if import::is_releases(&String::from_utf8_lossy(&head[..n])) {
            anyhow::ensure!(
                release.is_none(),
                "{}: the file names its releases; --release is for files that do not",
                path.display()
            );
            let text = std::fs::read_to_string(path)?;
            let name = path.display().to_string();
            let releases = import_releases(c, &mut client, &text, &name).await?;
            println!("{name}: {releases} releases imported");
            continue;
        }
        let s = import_file(c, &mut client, path, progress, release.clone()).await?;
        let t = &s.tally;
        println!(
            "{}: {} rows imported ({} new points, {} updated, {} batches), {} bad rows skipped; {} rows in all, {}",
            path.display(),
            t.imported,
            s.inserted,
            s.updated,
            s.batches,
            t.bad,
            t.rows,
            t.skipped_text(),
        );
    }
    Ok(())
}

/// Imports a file of releases ([`import::split_releases`]), one `StreamWritePoints` call per
/// release; the number of releases.
async fn import_releases(
    c: &ClientArgs,
    client: &mut tradepact_client::data::DataClient,
    text: &str,
    name: &str,
) -> anyhow::Result<usize> {
    let releases = import::split_releases(text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    for (release, tidy) in &releases {
        let name = format!("{name} [{}]", release.label);
        let len = tidy.len() as u64;
        let input = std::io::Cursor::new(tidy.clone().into_bytes());
        let s = import::stream(c, client, input, &name, len, false, Some(release.clone()));
        let t = s.await?.tally;
        anyhow::ensure!(t.bad == 0, "{name}: {} bad rows", t.bad);
    }
    Ok(releases.len())
}

async fn import_file(
    c: &ClientArgs,
    client: &mut tradepact_client::data::DataClient,
    path: &Path,
    progress: bool,
    release: Option<pb::Release>,
) -> anyhow::Result<import::ImportSummary> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    import::stream(
        c,
        client,
        std::io::BufReader::new(file),
        &name,
        len,
        progress,
        release,
    )
    .await
}
