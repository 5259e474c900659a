//! `tradepact`: run the services, import data, query them.

mod import;
mod query;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The KORUS sample dataset shipped with the project (`datasets/korus_trade.csv`).
pub(crate) const SAMPLE_CSV: &str = include_str!("../../../datasets/korus_trade.csv");

#[derive(Parser)]
#[command(
    name = "tradepact",
    version,
    about = "Trade-policy analysis services: run, import, query"
)]
struct Cli {
    #[command(flatten)]
    log: tradepact_rpc::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the services on the embedded store; an empty store gets the KORUS sample data.
    Up(up::UpArgs),
    /// Stream CSV files (tidy or UN Comtrade layout) into a running data service.
    Import {
        /// CSV files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The data service to write to.
        #[arg(
            long,
            env = "TRADEPACT_DATA_SERVICE_URL",
            default_value = "http://127.0.0.1:50051"
        )]
        data_service: String,
    },
    /// Print the trade balance of a reporter with a partner.
    Balance(query::BalanceArgs),
    /// List the stored series.
    Series(query::SeriesArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tradepact_rpc::init_tracing(cli.log.log_format);
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Import {
            files,
            data_service,
        } => up::import_files(&data_service, &files).await,
        Command::Balance(args) => query::balance(args).await,
        Command::Series(args) => query::series(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tradepact: {e:#}");
            ExitCode::FAILURE
        }
    }
}
