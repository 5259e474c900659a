//! `tradepact scenario import DIR` and `scenario export ID DIR`: scenarios of other negotiation
//! tools into and out of the negotiation service, through its `ImportScenario` and
//! `ExportScenario` RPCs. GENIUS (a `<negotiation_template>` domain file and one
//! `<utility_space>` file per party) and NegMAS (an outcome-space file and one utility-function
//! file per party, YAML or JSON); a directory's format is told by its domain file, and each
//! party is named after its file, in file-name order (as both tools order them).

use std::path::Path;

use clap::ValueEnum;
use tradepact_bargain::negmas::{self, FileKind};
use tradepact_client::DEFAULT_DEADLINE;
use tradepact_proto::negotiation_v1 as pb;

use crate::connect::ClientArgs;

/// Most bytes one scenario file may have.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// A scenario format, as the command line names it.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// GENIUS XML.
    Genius,
    /// NegMAS YAML.
    Negmas,
}

impl Format {
    fn pb(self) -> pb::ScenarioFormat {
        match self {
            Format::Genius => pb::ScenarioFormat::Genius,
            Format::Negmas => pb::ScenarioFormat::Negmas,
        }
    }
}

/// The turn rule of an imported negotiation, as the command line names it.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Turns {
    /// Offers go round in party order; responses in any order.
    OffersInOrder,
    /// Stacked alternating offers (as GENIUS and NegMAS negotiate).
    Stacked,
}

/// A file of the directory: its name and text.
type File = (String, String);

/// The format, domain file and profiles of `dir`.
fn read_dir(dir: &Path) -> anyhow::Result<(Format, File, Vec<File>)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
            ["xml", "yml", "yaml", "json"].contains(&ext.to_ascii_lowercase().as_str())
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    let (mut genius, mut negmas) = ((None, Vec::new()), (None, Vec::new()));
    for path in entries {
        let size = std::fs::metadata(&path)?.len();
        anyhow::ensure!(
            size <= MAX_FILE_BYTES,
            "{} is larger than 16 MiB",
            path.display()
        );
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let file = (path.file_name().unwrap_or_default())
            .to_string_lossy()
            .into_owned();
        let domain = |found: &mut Option<File>, kind: &str| {
            anyhow::ensure!(
                found.is_none(),
                "{} has two {kind} domain files",
                dir.display()
            );
            *found = Some((file.clone(), text.clone()));
            Ok(())
        };
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        {
            if text.contains("<negotiation_template") {
                domain(&mut genius.0, "GENIUS")?;
            } else if text.contains("<utility_space") {
                genius.1.push((file, text));
            }
        } else {
            match negmas::kind(&text) {
                FileKind::Domain => domain(&mut negmas.0, "NegMAS")?,
                FileKind::Utility => negmas.1.push((file, text)),
                FileKind::Other => {}
            }
        }
    }
    let (format, (domain, profiles)) = match (genius.0.is_some(), negmas.0.is_some()) {
        (true, false) => (Format::Genius, genius),
        (false, true) => (Format::Negmas, negmas),
        (true, true) => anyhow::bail!(
            "{} has both a GENIUS and a NegMAS domain file: keep one scenario per directory",
            dir.display()
        ),
        (false, false) => anyhow::bail!(
            "{} has no domain file (a GENIUS <negotiation_template>, or a NegMAS …OutcomeSpace)",
            dir.display()
        ),
    };
    anyhow::ensure!(
        profiles.len() >= 2,
        "{} has {} party files; a negotiation needs two or more",
        dir.display(),
        profiles.len()
    );
    Ok((format, domain.expect("matched above"), profiles))
}

/// Creates the negotiation of the scenario in `dir` with every party's position.
pub async fn import(
    c: &ClientArgs,
    dir: &Path,
    url: &str,
    rounds: u32,
    turns: Turns,
) -> anyhow::Result<()> {
    let (format, (name, content), profiles) = read_dir(dir)?;
    let file = |(name, content)| pb::ScenarioFile { name, content };
    let request = pb::ImportScenarioRequest {
        format: format.pb().into(),
        domain: Some(file((name, content))),
        profiles: profiles.into_iter().map(file).collect(),
        deadline_rounds: rounds,
        title: String::new(),
        turn_rule: match turns {
            Turns::OffersInOrder => pb::TurnRule::OffersInOrder,
            Turns::Stacked => pb::TurnRule::Stacked,
        }
        .into(),
    };
    let mut client = c.negotiation(url).await?;
    let imported = client
        .import_scenario(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    let created = imported
        .negotiation
        .ok_or_else(|| anyhow::anyhow!("the service returned no negotiation"))?;
    println!("{}", created.id);
    eprintln!(
        "created {} ({} issues, {} parties) from {}",
        created.id,
        created.issues.len(),
        created.parties.len(),
        dir.display()
    );
    for note in imported.notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// Writes negotiation `id` as a scenario into `dir`: the domain file and one file per party
/// whose position the token may see.
pub async fn export(
    c: &ClientArgs,
    id: &str,
    dir: &Path,
    url: &str,
    format: Format,
) -> anyhow::Result<()> {
    let mut client = c.negotiation(url).await?;
    let request = pb::ExportScenarioRequest {
        id: id.to_owned(),
        format: format.pb().into(),
    };
    let export = client
        .export_scenario(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner();
    let files: Vec<pb::ScenarioFile> = export.domain.into_iter().chain(export.profiles).collect();
    // Names come from the negotiation (its parties): each must stay a file inside `dir`.
    for f in &files {
        anyhow::ensure!(
            Path::new(&f.name)
                .file_name()
                .is_some_and(|n| n == f.name.as_str())
                && !f.name.starts_with('.'),
            "cannot write {:?}: a party's name must make a plain file name",
            f.name
        );
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    for f in &files {
        let path = dir.join(&f.name);
        std::fs::write(&path, &f.content)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!(
        "wrote {} with {} party files{}",
        dir.display(),
        files.len() - 1,
        match export.left_out.is_empty() {
            true => String::new(),
            false => format!(
                " (positions not visible to this caller, or not set: {})",
                export.left_out.join(", ")
            ),
        }
    );
    Ok(())
}
