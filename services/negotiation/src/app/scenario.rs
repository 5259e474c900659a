//! `ImportScenario` and `ExportScenario`'s work: another tool's scenario files (GENIUS,
//! NegMAS) into a negotiation with every party's position, and a negotiation back into files
//! with the positions its caller may see.

use tradepact_bargain::scenario::ScenarioFormat;
use tradepact_bargain::{Command, Negotiation, TurnRule};
use tradepact_model::{Failure, Outcome};

use super::caller::Caller;
use super::log::{public_id, Meta};
use super::{failure, Held, Negotiations};

/// Rounds an imported negotiation allows when the request does not say.
pub const DEFAULT_IMPORT_ROUNDS: u32 = 100;

/// What an import reads: the files, and how the negotiation is created.
pub struct ScenarioImport {
    /// The files' format.
    pub format: ScenarioFormat,
    /// The domain file: name and text.
    pub domain: (String, String),
    /// One profile per party: party, file name and text.
    pub profiles: Vec<(String, String, String)>,
    /// Rounds (0: [`DEFAULT_IMPORT_ROUNDS`]).
    pub deadline_rounds: u32,
    /// Title (empty: the domain's name).
    pub title: String,
    /// Who may act when.
    pub turn_rule: TurnRule,
}

/// A negotiation written as scenario files.
pub struct ScenarioExport {
    /// The domain file: name and text.
    pub domain: (String, String),
    /// One file per party written: name and text.
    pub profiles: Vec<(String, String)>,
    /// Parties not written (position hidden from the caller, or not set).
    pub left_out: Vec<String>,
}

impl Negotiations {
    /// Creates the negotiation of a scenario and sets every party's position; the last entry
    /// and what the files held that the model does not carry. The caller's scopes for every
    /// party are checked before (by the handler, before anything is read).
    pub async fn import_scenario(&self, req: ScenarioImport) -> Outcome<(Held, Vec<String>)> {
        let (format, (domain_file, domain), profiles) = (req.format, req.domain, req.profiles);
        // Parsing up to the message limit is CPU work: off the async workers.
        let scenario =
            tokio::task::spawn_blocking(move || format.read(&domain_file, &domain, &profiles))
                .await
                .map_err(|e| Failure::Internal {
                    context: "the import stopped".to_owned(),
                    detail: e.to_string(),
                })?
                .map_err(failure)?;
        let rounds = match req.deadline_rounds {
            0 => DEFAULT_IMPORT_ROUNDS,
            n => n,
        };
        let title = match req.title.is_empty() {
            true => scenario.name.clone(),
            false => req.title,
        };
        let agreement = match format {
            ScenarioFormat::Genius => "imported GENIUS scenario",
            ScenarioFormat::Negmas => "imported NegMAS scenario",
        };
        let notes = scenario.not_carried_over();
        let parties: Vec<String> = scenario.positions.iter().map(|(p, _)| p.clone()).collect();
        let effects = (scenario.issues.iter())
            .map(|i| vec![Vec::new(); i.options.len()])
            .collect();
        let created = Negotiation::create(
            &title,
            agreement,
            parties,
            scenario.issues,
            rounds,
            req.turn_rule,
        )
        .map_err(failure)?;
        let mut last = self.create(created, Meta::new(effects)).await?;
        let id = public_id(last.meta.id);
        for (party, position) in scenario.positions {
            // The entry is held while it is used: let it go before the next command takes it.
            drop(last);
            last = self
                .command(&id, Command::SetPosition { party, position })
                .await?;
        }
        Ok((last, notes))
    }

    /// Negotiation `id` as scenario files, with the positions `caller` may see.
    pub async fn export_scenario(
        &self,
        id: &str,
        caller: &Caller,
        format: ScenarioFormat,
    ) -> Outcome<ScenarioExport> {
        let (name, issues, seen, left_out) = {
            let entry = self.get(id).await?;
            let n = &entry.negotiation;
            let visibility = caller.visibility(&n.parties);
            let (mut seen, mut left_out) = (Vec::new(), Vec::new());
            for (i, (party, spec)) in n.parties.iter().zip(entry.position_specs()).enumerate() {
                match spec.filter(|_| visibility.sees(i)) {
                    Some(spec) => seen.push((party.clone(), spec)),
                    None => left_out.push(party.clone()),
                }
            }
            (n.title.clone(), n.space.issues().to_vec(), seen, left_out)
        };
        let extension = format.extensions()[0];
        // Bounded by the negotiation's size (its creation is at most 1 MiB), but text all the
        // same: off the async workers.
        let (domain, profiles) = tokio::task::spawn_blocking(move || {
            let specs: Vec<_> = seen.iter().map(|(_, s)| s).collect();
            let (domain, texts) = format.write(&name, &issues, &specs);
            let profiles = (seen.iter().zip(texts))
                .map(|((party, _), text)| (format!("{party}{extension}"), text))
                .collect();
            (domain, profiles)
        })
        .await
        .map_err(|e| Failure::Internal {
            context: "the export stopped".to_owned(),
            detail: e.to_string(),
        })?;
        Ok(ScenarioExport {
            domain: (format!("domain{extension}"), domain),
            profiles,
            left_out,
        })
    }
}
