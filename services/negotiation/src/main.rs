use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = tradepact_negotiation::Config::parse();
    tradepact_rpc::init_tracing(config.log.log_format);
    match tradepact_negotiation::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tradepact-negotiation: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
