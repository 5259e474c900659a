use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = tradepact_data::Config::parse();
    tradepact_rpc::init_tracing(config.log.log_format);
    match tradepact_data::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tradepact-data: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
