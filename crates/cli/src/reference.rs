//! Reference commands: `tradepact countries`, `tradepact groups`, `tradepact products`.

use tradepact_client::DEFAULT_DEADLINE;
use tradepact_proto::data_v1 as pb;

use crate::connect::ClientArgs;

/// The data service flag every reference command takes.
#[derive(Clone, Debug, clap::Args)]
pub struct DataService {
    /// The data service.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub data_service: String,
}

/// `tradepact products …`
#[derive(Clone, Debug, clap::Subcommand)]
pub enum ProductsAction {
    /// Products whose description holds every word (or whose code starts with digits).
    Search {
        /// Words ("motor vehicles") or a code prefix ("8703").
        #[arg(required = true)]
        words: Vec<String>,
        #[command(flatten)]
        service: DataService,
    },
    /// The products directly under a code ("HS2022:87").
    Under {
        /// The parent's code.
        parent: String,
        #[command(flatten)]
        service: DataService,
    },
}

fn failed(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", s.message())
}

/// Prints the countries and areas whose code or name holds every word of `search`.
pub async fn countries(
    c: &ClientArgs,
    search: &[String],
    service: DataService,
) -> anyhow::Result<()> {
    let mut client = c.data(&service.data_service).await?;
    let request = pb::ListCountriesRequest {
        search: search.join(" "),
        ..Default::default()
    };
    let found = client
        .list_countries(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(failed)?
        .into_inner()
        .countries;
    for country in found {
        let kind = country
            .kind()
            .as_str_name()
            .trim_start_matches("COUNTRY_KIND_")
            .to_lowercase();
        let until = match country.until_year {
            0 => String::new(),
            y => format!(" (until {y})"),
        };
        println!(
            "{} {:>3} {:<7} {}{until}",
            country.code, country.m49, kind, country.name
        );
    }
    Ok(())
}

/// Prints the groups (or the one named), with members and their years, or those of `year`.
pub async fn groups(
    c: &ClientArgs,
    name: Option<String>,
    year: Option<u32>,
    service: DataService,
) -> anyhow::Result<()> {
    let mut client = c.data(&service.data_service).await?;
    let request = pb::ListGroupsRequest {
        name: name.unwrap_or_default(),
        as_of_year: year.unwrap_or(0),
    };
    let groups = client
        .list_groups(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(failed)?
        .into_inner()
        .groups;
    for g in groups {
        let members: Vec<String> = g
            .members
            .iter()
            .map(|m| match (m.from_year, m.until_year) {
                (0, 0) => m.code.clone(),
                (f, 0) => format!("{}({f}-)", m.code),
                (0, u) => format!("{}(-{u})", m.code),
                (f, u) => format!("{}({f}-{u})", m.code),
            })
            .collect();
        let mine = if g.user_defined { " [yours]" } else { "" };
        println!(
            "{}{mine}: {} ({} members)",
            g.name,
            g.description,
            members.len()
        );
        println!("  {}", members.join(" "));
    }
    Ok(())
}

/// Prints the products a search or a parent gives, page after page.
pub async fn products(c: &ClientArgs, action: ProductsAction) -> anyhow::Result<()> {
    let (search, parent, service) = match action {
        ProductsAction::Search { words, service } => (words.join(" "), String::new(), service),
        ProductsAction::Under { parent, service } => (String::new(), parent, service),
    };
    let mut client = c.data(&service.data_service).await?;
    let mut page_token = String::new();
    loop {
        let request = pb::ListProductsRequest {
            search: search.clone(),
            parent: parent.clone(),
            page_size: 1000,
            page_token,
        };
        let page = client
            .list_products(c.request(request, Some(DEFAULT_DEADLINE)))
            .await
            .map_err(failed)?
            .into_inner();
        for p in page.products {
            println!("{:<13} {}", p.code, p.description);
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}
