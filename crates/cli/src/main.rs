//! `tradepact`: run the services, import data, query them.

mod chart;
mod cluster;
mod comtrade;
mod connect;
mod files;
mod import;
mod mediate;
mod query;
mod reference;
mod report;
mod robustness;
mod scenario;
mod seat;
mod simulate;
mod tariffs;
mod up;
mod vintage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The KORUS sample dataset shipped with the project (`datasets/korus_trade.csv`).
pub(crate) const SAMPLE_CSV: &str = include_str!("../../../datasets/korus_trade.csv");
/// The releases of the KORUS figures as each source published them
/// (`datasets/korus_releases.csv`).
pub(crate) const SAMPLE_RELEASES: &str = include_str!("../../../datasets/korus_releases.csv");
/// The KORUS tariff rates (`tradepact up` loads them with the sample).
pub(crate) const SAMPLE_TARIFFS: &str = include_str!("../../../datasets/korus_tariffs.csv");
/// US imports from Korea on the light-truck tariff lines (`tradepact up` loads them too).
pub(crate) const SAMPLE_LINES: &str = include_str!("../../../datasets/korus_lines.csv");

#[derive(Parser)]
#[command(
    name = "tradepact",
    version,
    about = "Trade-policy analysis services: run, import, query"
)]
struct Cli {
    #[command(flatten)]
    log: tradepact_rpc::LogArgs,
    #[command(flatten)]
    client: connect::ClientArgs,
    #[command(subcommand)]
    command: Command,
}

/// The charts `tradepact chart` draws.
#[derive(Subcommand)]
enum Chart {
    /// Goods, services and total balance of a reporter with a partner over the periods.
    Balance(chart::BalanceChartArgs),
    /// A two-party negotiation's utility space: Pareto frontier, reservation values, the
    /// bargaining solutions and the offers so far.
    Negotiation(chart::NegotiationChartArgs),
    /// A simulated negotiation between strategies: each party's concession curve by round
    /// (nothing is recorded).
    Simulation(chart::SimulationChartArgs),
}

/// The reports `tradepact report` writes.
#[derive(Subcommand)]
enum Report {
    /// A negotiation brief as one self-contained HTML page: scenario, positions (those the
    /// token may see), ZOPA, utility space, solutions beside the actual package, logrolling
    /// hints and the trade impact of the Nash package.
    Negotiation(report::NegotiationReportArgs),
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
        /// Import the files as this release (a label such as census-2018-02): earlier
        /// releases' values of the same points are kept (`tradepact revisions`).
        #[arg(long, requires = "release_date")]
        release: Option<String>,
        /// The day the release was published (YYYY-MM-DD).
        #[arg(long, requires = "release")]
        release_date: Option<String>,
        /// Where the release comes from (a citation or URL).
        #[arg(long, default_value = "", requires = "release")]
        release_source: String,
        /// The data service to write to.
        #[arg(
            long,
            env = "TRADEPACT_DATA_SERVICE_URL",
            default_value = "http://127.0.0.1:50051"
        )]
        data_service: String,
    },
    /// Bring a store written by an older tradepact to the current format (the data service
    /// must be stopped; the old store is kept beside it).
    MigrateStore {
        /// The store's directory (the data service's --data-dir; `data/trade` under `up`).
        dir: PathBuf,
    },
    /// Read every chunk of a stopped store, checking checksums and counts; lists each corrupt
    /// chunk with its series and periods, and fails if there is one.
    VerifyStore {
        /// The store's directory (the data service's --data-dir; `data/trade` under `up`).
        dir: PathBuf,
    },
    /// List the releases (vintages) of the store, or of a reporter's or partner's series.
    Releases(vintage::ReleasesArgs),
    /// What changed between two releases or dates
    /// (`tradepact revisions USA KOR --from ustr-2017 --to census-2018-02`).
    Revisions(vintage::RevisionsArgs),
    /// List the countries and areas a reporter or partner may be (`tradepact countries korea`).
    Countries {
        /// Words the code or name must hold; none for all.
        search: Vec<String>,
        #[command(flatten)]
        service: reference::DataService,
    },
    /// List country groups with their members over time (`tradepact groups EU --year 2019`).
    Groups {
        /// One group; none for all.
        name: Option<String>,
        /// Only the members of that year.
        #[arg(long)]
        year: Option<u32>,
        #[command(flatten)]
        service: reference::DataService,
    },
    /// Search the HS nomenclature (`tradepact products search motor vehicles`).
    Products {
        #[command(subcommand)]
        action: reference::ProductsAction,
    },
    /// Rank a reporter's partners or products in a year
    /// (`tradepact top USA --flow import --year 2016 --by partner`).
    Top(query::TopArgs),
    /// Print the trade balance of a reporter with a partner.
    Balance(query::BalanceArgs),
    /// Draw a chart as SVG (`tradepact chart balance USA KOR --out balance.svg`,
    /// `tradepact chart negotiation ID --out space.svg`).
    Chart {
        #[command(subcommand)]
        chart: Chart,
    },
    /// Write a report (`tradepact report negotiation ID --out brief.html`).
    Report {
        #[command(subcommand)]
        report: Report,
    },
    /// List the stored series.
    Series(query::SeriesArgs),
    /// Print the SHA-256 line of a bearer token for a tokens file (`HASH NAME SCOPES`).
    HashToken {
        /// The token (keep it secret; only its hash goes into the file).
        token: String,
        /// A name for the token, shown in logs.
        #[arg(long, default_value = "client")]
        name: String,
        /// Its scopes, comma-separated (data:read, data:write, negotiation:read,
        /// negotiation:write, negotiation:position:PARTY, negotiation:all-parties, *).
        #[arg(long, default_value = "data:read,negotiation:read")]
        scopes: String,
    },
    /// Load a shipped scenario into the negotiation service (`scenario load korus-2018`).
    Scenario {
        #[command(subcommand)]
        action: ScenarioAction,
    },
    /// Analyse a negotiation: ZOPA, frontier, Nash and other solutions, logrolling hints.
    Analyze {
        /// Negotiation id (e.g. neg-000001).
        id: String,
        /// Compare the Nash point with this scenario's actual outcome (e.g. korus-2018).
        #[arg(long)]
        compare: Option<String>,
        /// The negotiation service.
        #[arg(
            long,
            env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
            default_value = "http://127.0.0.1:50052"
        )]
        negotiation_service: String,
    },
    /// How robust the bargaining solutions are to the assumed positions: sampling within
    /// ranges, and each parameter alone.
    Robustness(robustness::RobustnessArgs),
    /// A mediated negotiation (single negotiation text): where the mediator's text ends,
    /// beside the Nash package.
    Mediate(mediate::MediateArgs),
    /// A simulation between strategies, turn by turn; --record keeps it as a branch (a new
    /// negotiation under the stacked turn rule).
    Simulate(simulate::SimulateArgs),
    /// Take a party's seat live against the service's strategies: each turn is printed, and
    /// on the seat's turns a line of input is its move (offer ISSUE=OPTION,… | accept |
    /// reject | break-off REASON).
    Seat(seat::SeatArgs),
    /// Estimate the trade impact of the agreed package, or of `--package issue=option,…`.
    Impact {
        /// Negotiation id.
        id: String,
        /// The package, as issue=option pairs separated by commas.
        #[arg(long)]
        package: Option<String>,
        /// Baseline year (default: the latest year of each series).
        #[arg(long)]
        year: Option<String>,
        /// The negotiation service.
        #[arg(
            long,
            env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
            default_value = "http://127.0.0.1:50052"
        )]
        negotiation_service: String,
    },
}

#[derive(Subcommand)]
enum ScenarioAction {
    /// Create the scenario's negotiation and set its positions; prints the new id.
    Load {
        /// Scenario id (korus-2018).
        id: String,
        /// The negotiation service.
        #[arg(
            long,
            env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
            default_value = "http://127.0.0.1:50052"
        )]
        negotiation_service: String,
    },
    /// Create a negotiation from a GENIUS or NegMAS scenario directory (a domain file and one
    /// file per party, named after it); prints the new id.
    Import {
        /// The directory.
        dir: PathBuf,
        /// Rounds the negotiation allows.
        #[arg(long, default_value_t = 100)]
        rounds: u32,
        /// Who may act when.
        #[arg(long, value_enum, default_value = "offers-in-order")]
        turn_rule: files::Turns,
        /// The negotiation service.
        #[arg(
            long,
            env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
            default_value = "http://127.0.0.1:50052"
        )]
        negotiation_service: String,
    },
    /// Write a negotiation as a scenario (GENIUS: domain.xml and PARTY.xml; NegMAS: domain.yml
    /// and PARTY.yml; a party file for each position the token may see).
    Export {
        /// Negotiation id.
        id: String,
        /// The directory to write.
        dir: PathBuf,
        /// The format.
        #[arg(long, value_enum, default_value = "genius")]
        format: files::Format,
        /// The negotiation service.
        #[arg(
            long,
            env = "TRADEPACT_NEGOTIATION_SERVICE_URL",
            default_value = "http://127.0.0.1:50052"
        )]
        negotiation_service: String,
    },
}

/// Counts each thread's heap bytes, so that memory budgets bound what is really held.
#[global_allocator]
static ALLOC: tradepact_rpc::alloc::Counting = tradepact_rpc::alloc::Counting;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = match tradepact_rpc::init_tracing(&cli.log, "tradepact") {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("tradepact: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Import {
            files,
            release,
            release_date,
            release_source,
            data_service,
        } => {
            let release = release.map(|label| tradepact_proto::data_v1::Release {
                label,
                date: release_date.unwrap_or_default(),
                source: release_source,
            });
            up::import_files(&cli.client, &data_service, &files, release).await
        }
        Command::MigrateStore { dir } => tradepact_data::migrate_store(&dir).map(|done| {
            println!("{done}");
        }),
        Command::VerifyStore { dir } => vintage::verify_store(&dir),
        Command::Releases(args) => vintage::releases(&cli.client, args).await,
        Command::Revisions(args) => vintage::revisions(&cli.client, args).await,
        Command::Countries { search, service } => {
            reference::countries(&cli.client, &search, service).await
        }
        Command::Groups {
            name,
            year,
            service,
        } => reference::groups(&cli.client, name, year, service).await,
        Command::Products { action } => reference::products(&cli.client, action).await,
        Command::Top(args) => query::top(&cli.client, args).await,
        Command::Balance(args) => query::balance(&cli.client, args).await,
        Command::Chart {
            chart: Chart::Balance(args),
        } => chart::balance(&cli.client, args).await,
        Command::Chart {
            chart: Chart::Negotiation(args),
        } => chart::negotiation(&cli.client, args).await,
        Command::Chart {
            chart: Chart::Simulation(args),
        } => chart::simulation(&cli.client, args).await,
        Command::Report {
            report: Report::Negotiation(args),
        } => report::negotiation(&cli.client, args).await,
        Command::Series(args) => query::series(&cli.client, args).await,
        Command::HashToken {
            token,
            name,
            scopes,
        } => {
            println!(
                "{} {name} {scopes}",
                tradepact_rpc::auth::hash_token(&token)
            );
            Ok(())
        }
        Command::Scenario {
            action:
                ScenarioAction::Load {
                    id,
                    negotiation_service,
                },
        } => scenario::load(&cli.client, &id, &negotiation_service).await,
        Command::Scenario {
            action:
                ScenarioAction::Import {
                    dir,
                    rounds,
                    turn_rule,
                    negotiation_service,
                },
        } => files::import(&cli.client, &dir, &negotiation_service, rounds, turn_rule).await,
        Command::Scenario {
            action:
                ScenarioAction::Export {
                    id,
                    dir,
                    format,
                    negotiation_service,
                },
        } => files::export(&cli.client, &id, &dir, &negotiation_service, format).await,
        Command::Analyze {
            id,
            compare,
            negotiation_service,
        } => scenario::analyze(&cli.client, &id, &negotiation_service, compare.as_deref()).await,
        Command::Robustness(args) => robustness::run(&cli.client, args).await,
        Command::Mediate(args) => mediate::run(&cli.client, args).await,
        Command::Simulate(args) => simulate::run(&cli.client, args).await,
        Command::Seat(args) => seat::run(&cli.client, args).await,
        Command::Impact {
            id,
            package,
            year,
            negotiation_service,
        } => {
            scenario::impact(
                &cli.client,
                &id,
                &negotiation_service,
                package.as_deref(),
                year.as_deref(),
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tradepact: {e:#}");
            ExitCode::FAILURE
        }
    }
}
