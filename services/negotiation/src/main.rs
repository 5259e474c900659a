use clap::Parser;

/// Counts each thread's heap bytes, so that memory budgets bound what is really held.
#[global_allocator]
static ALLOC: tradepact_rpc::alloc::Counting = tradepact_rpc::alloc::Counting;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = tradepact_negotiation::Config::parse();
    let _telemetry = match tradepact_rpc::init_tracing(&config.log, "tradepact-negotiation") {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("tradepact-negotiation: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match tradepact_negotiation::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tradepact-negotiation: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
