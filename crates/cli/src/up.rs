//! `tradepact up` and `tradepact import`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::import;

/// Flags of `tradepact up`.
#[derive(Clone, Debug, clap::Args)]
pub struct UpArgs {
    /// Home of the embedded stores (the data service's store is HOME/trade); default: the
    /// user's data directory (e.g. ~/.local/share/tradepact), else ./data.
    #[arg(long, env = "TRADEPACT_HOME")]
    pub home: Option<PathBuf>,
    /// Address of the data service.
    #[arg(long, env = "TRADEPACT_DATA_LISTEN", default_value = tradepact_data::DEFAULT_LISTEN)]
    pub data_listen: String,
    /// Do not load the KORUS sample dataset into an empty store.
    #[arg(long)]
    pub no_sample: bool,
    #[command(flatten)]
    pub limits: tradepact_rpc::LimitArgs,
}

fn default_home() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("tradepact"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Runs the services until SIGINT or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let home = args.home.clone().unwrap_or_else(default_home);
    let store = tradepact_data::open_store(&home.join("trade"))?;
    let empty = store.is_empty()?;
    let listener = tradepact_rpc::server::bind(&args.data_listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(home = %home.display(), "tradepact up");
    let server = tokio::spawn(tradepact_data::serve(
        listener,
        store,
        tradepact_rpc::Limits::from(&args.limits),
        tradepact_rpc::server::shutdown_signal(),
    ));
    if empty && !args.no_sample {
        let mut client = tradepact_client::data::connect(&format!("http://{addr}")).await?;
        let s = import::stream(
            &mut client,
            crate::SAMPLE_CSV.as_bytes(),
            "KORUS sample (datasets/korus_trade.csv)",
            crate::SAMPLE_CSV.len() as u64,
            false,
        )
        .await?;
        tracing::info!(
            points = s.inserted,
            "the store was empty: loaded the KORUS sample dataset"
        );
    }
    tracing::info!("ready: data service on http://{addr}; Ctrl-C to stop");
    server.await?
}

/// `tradepact import FILE…`
pub async fn import_files(url: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut client = tradepact_client::data::connect(url).await?;
    let progress = std::io::stderr().is_terminal();
    for path in files {
        let s = import_file(&mut client, path, progress).await?;
        println!(
            "{}: {} rows imported ({} new points, {} updated, {} batches), {} bad rows skipped",
            path.display(),
            s.good_rows,
            s.inserted,
            s.updated,
            s.batches,
            s.bad_rows
        );
    }
    Ok(())
}

async fn import_file(
    client: &mut tradepact_client::data::DataClient,
    path: &Path,
    progress: bool,
) -> anyhow::Result<import::ImportSummary> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    import::stream(client, std::io::BufReader::new(file), &name, len, progress).await
}
