//! `tradepact scenario import DIR` and `scenario export ID DIR`: GENIUS scenarios (a domain
//! file and one utility-space file per party, see `tradepact_bargain::genius`) into and out of
//! the negotiation service, through its public RPCs (CreateNegotiation and SetPosition; and
//! GetNegotiation with the positions the token may see).

use std::path::Path;

use tradepact_bargain::genius;
use tradepact_client::DEFAULT_DEADLINE;
use tradepact_proto::negotiation_v1 as pb;

use crate::connect::ClientArgs;

/// Most bytes one GENIUS file may have.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// A party's utility space: its name (the file's stem), the file's name and its text.
type Profile = (String, String, String);

/// The domain (the `<negotiation_template>` file: name and text) and the profiles of `dir`.
fn read_dir(dir: &Path) -> anyhow::Result<(String, String, Vec<Profile>)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")))
        .collect();
    entries.sort();
    let (mut domain, mut profiles) = (None, Vec::new());
    for path in entries {
        let size = std::fs::metadata(&path)?.len();
        anyhow::ensure!(
            size <= MAX_FILE_BYTES,
            "{} is larger than 16 MiB",
            path.display()
        );
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if text.contains("<negotiation_template") {
            anyhow::ensure!(
                domain.is_none(),
                "{} has two domain files (<negotiation_template>)",
                dir.display()
            );
            domain = Some((file, text));
        } else if text.contains("<utility_space") {
            profiles.push((stem, file, text));
        }
    }
    let (file, text) = domain.ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no domain file (<negotiation_template>)",
            dir.display()
        )
    })?;
    anyhow::ensure!(
        profiles.len() >= 2,
        "{} has {} utility-space files; a negotiation needs two or more",
        dir.display(),
        profiles.len()
    );
    Ok((file, text, profiles))
}

/// Creates the negotiation of the GENIUS scenario in `dir` and sets every party's position.
pub async fn import(c: &ClientArgs, dir: &Path, url: &str, rounds: u32) -> anyhow::Result<()> {
    let (file, domain, profiles) = read_dir(dir)?;
    let scenario = genius::read(&file, &domain, &profiles).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut client = c.negotiation(url).await?;
    let request = pb::CreateNegotiationRequest {
        title: scenario.name.clone(),
        agreement: format!("GENIUS scenario imported from {}", dir.display()),
        parties: scenario.positions.iter().map(|(p, _)| p.clone()).collect(),
        issues: (scenario.issues.iter())
            .map(|i| pb::Issue {
                id: i.id.clone(),
                label: i.label.clone(),
                options: (i.options.iter())
                    .map(|o| pb::IssueOption {
                        id: o.id.clone(),
                        label: o.label.clone(),
                        trade_effects: vec![],
                    })
                    .collect(),
            })
            .collect(),
        deadline_rounds: rounds,
        ..Default::default()
    };
    let created = client
        .create_negotiation(c.request(request, Some(DEFAULT_DEADLINE)))
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .negotiation
        .ok_or_else(|| anyhow::anyhow!("the service returned no negotiation"))?;
    for (party, spec) in &scenario.positions {
        let position = pb::Position {
            weights: spec.weights.clone().into_iter().collect(),
            values: (spec.values.iter())
                .map(|(issue, v)| {
                    let values = v.clone().into_iter().collect();
                    (issue.clone(), pb::OptionValues { values })
                })
                .collect(),
            reservation_value: spec.reservation,
        };
        crate::scenario::set_position(c, &mut client, &created.id, party, position).await?;
    }
    println!("{}", created.id);
    eprintln!(
        "created {} ({} issues, {} parties)",
        created.id,
        scenario.issues.len(),
        scenario.positions.len(),
    );
    for note in scenario.not_carried_over() {
        eprintln!("note: {note}");
    }
    Ok(())
}

/// Writes negotiation `id` as a GENIUS scenario into `dir`: `domain.xml` and `PARTY.xml` for
/// each party whose position the token may see.
pub async fn export(c: &ClientArgs, id: &str, dir: &Path, url: &str) -> anyhow::Result<()> {
    let mut client = c.negotiation(url).await?;
    let n = crate::chart::fetch_negotiation(c, &mut client, id, true).await?;
    let issues = crate::scenario::issues_of(&n);
    let seen: Vec<(String, tradepact_bargain::PositionSpec)> = (n.positions.iter())
        .filter_map(|p| {
            Some((
                p.party.clone(),
                crate::scenario::spec_of(p.position.as_ref()?),
            ))
        })
        .collect();
    let specs: Vec<_> = seen.iter().map(|(_, s)| s).collect();
    let (domain, profiles) = genius::write(&n.title, &issues, &specs);
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    };
    write("domain.xml", &domain)?;
    for ((party, _), xml) in seen.iter().zip(&profiles) {
        write(&format!("{party}.xml"), xml)?;
    }
    let hidden: Vec<&str> = (n.parties.iter())
        .map(String::as_str)
        .filter(|p| !seen.iter().any(|(s, _)| s == p))
        .collect();
    eprintln!(
        "wrote {} with {} utility spaces{}",
        dir.display(),
        seen.len(),
        match hidden.is_empty() {
            true => String::new(),
            false => format!(
                " (positions not visible to this caller: {})",
                hidden.join(", ")
            ),
        }
    );
    Ok(())
}
