//! `SimulateNegotiation`'s work: strategies playing out the negotiation from its positions,
//! turn by turn, as one heavy call; optionally recorded as a branch (a new negotiation
//! forked at round 0 whose events are the simulation's offers and answers). A branch is
//! created under the stacked turn rule the simulation plays by, with the simulation's
//! deadline, for any number of parties; a run that ends at its deadline leaves it broken off,
//! an agreement agreed, and a run without a ZOPA (no turn played) open.

use std::sync::Arc;

use tokio::sync::mpsc;
use tradepact_bargain::negotiation::MAX_ROUNDS;
use tradepact_bargain::simulate::{Action, Outcome as SimOutcome};
use tradepact_bargain::{
    Command, Event, Negotiation, OutcomeSpace, Position, Simulation, Step, Strategy, TurnRule,
};
use tradepact_model::{Failure, Outcome};

use super::caller::Caller;
use super::heavy::{evaluation_job, joined, send_checking, AbortOnDrop};
use super::log::{public_id, Meta};
use super::{events_until_round, Negotiations};

/// What a simulation asks for.
pub struct SimulationRequest {
    /// One strategy per party, in party order.
    pub strategies: Vec<Strategy>,
    /// Rounds (0: the negotiation's deadline).
    pub deadline_rounds: u32,
    /// Seed of the strategies' randomness.
    pub seed: u64,
    /// Whether to record the run as a branch.
    pub record_as_branch: bool,
}

/// What a simulation reports, in order: its turns, then its outcome.
pub enum Report {
    /// One turn.
    Turn(Step),
    /// How it ended, and the id of the branch it was recorded as (empty if not).
    End(SimOutcome, String),
}

/// A running simulation: its space and parties (to describe its turns) and its reports.
pub struct Run {
    /// The outcome space.
    pub space: OutcomeSpace,
    /// The parties, in order.
    pub parties: Vec<String>,
    /// The reports; a failure ends them.
    pub reports: mpsc::Receiver<Outcome<Report>>,
}

type Turns = mpsc::Receiver<Result<Step, SimOutcome>>;

impl Negotiations {
    /// Starts a simulation of negotiation `id` for a `caller` who must see every position.
    /// Set-up errors (a strategy that does not fit, a frontier past its bound) are answered
    /// here; the turns come through a bounded channel, and a reader that stops reading or
    /// goes away stops the run.
    pub async fn simulate(
        self: &Arc<Self>,
        id: &str,
        caller: Caller,
        req: SimulationRequest,
    ) -> Outcome<Run> {
        let (_, entry) = self.entry(id).await?;
        let entry = entry.lock().await;
        let n = &entry.negotiation;
        caller.require_every_party(&n.parties, "a simulation")?;
        let Some(positions) = n.all_positions() else {
            return Err(Failure::FailedPrecondition(
                "every party needs a position before a simulation".to_owned(),
            ));
        };
        let positions: Vec<Position> = positions.into_iter().cloned().collect();
        let deadline = match req.deadline_rounds {
            0 => n.deadline_rounds,
            d => d,
        };
        if req.record_as_branch && deadline > MAX_ROUNDS {
            return Err(Failure::invalid(
                "deadline_rounds",
                format!("a branch allows at most {MAX_ROUNDS} rounds, got {deadline}"),
            ));
        }
        let (space, parties) = (n.space.clone(), n.parties.clone());
        let branch = req.record_as_branch.then(|| {
            let mut events = events_until_round(&entry, 0);
            if let Some(Event::Created {
                deadline_rounds,
                turn_rule,
                ..
            }) = events.first_mut()
            {
                (*deadline_rounds, *turn_rule) = (deadline, TurnRule::Stacked);
            }
            (events, entry.meta.clone())
        });
        drop(entry);
        let (steps_tx, mut steps_rx) = mpsc::channel(64);
        let (run_space, heavy, seed) = (space.clone(), self.heavy.clone(), req.seed);
        let strategies = req.strategies;
        // Its own task, so that its bounds hold while the stream waits for a slow reader;
        // aborted (which stops the computation) when the stream or this call is dropped.
        let mut run = AbortOnDrop(tokio::spawn(async move {
            heavy
                .run("a simulation", move || {
                    let refs: Vec<&Position> = positions.iter().collect();
                    let mut sim = Simulation::new(&run_space, refs, strategies, deadline, seed)?;
                    for step in sim.by_ref() {
                        send_checking(&steps_tx, Ok(step))?;
                    }
                    tradepact_bargain::cancel::check()?;
                    if let Some(o) = sim.outcome() {
                        send_checking(&steps_tx, Err(o.clone()))?;
                    }
                    Ok(())
                })
                .await
        }));
        let mut run_done = false;
        let first = tokio::select! {
            first = steps_rx.recv() => first,
            done = &mut run.0 => {
                run_done = true;
                joined(done)?;
                steps_rx.recv().await
            }
        };
        if first.is_none() && !run_done {
            // The channel closed before any turn: the run ended without one (refused, or
            // stopped during set-up); its answer is the call's.
            joined((&mut run.0).await)?;
            run_done = true;
        }
        let (tx, reports) = mpsc::channel(64);
        let recorder = Recorder {
            app: self.clone(),
            parties: parties.clone(),
            seed,
            branch,
        };
        tokio::spawn(recorder.report(first, steps_rx, run, run_done, tx));
        Ok(Run {
            space,
            parties,
            reports,
        })
    }
}

/// Passes the turns on and records the branch.
struct Recorder {
    app: Arc<Negotiations>,
    parties: Vec<String>,
    seed: u64,
    /// The events and metadata a branch starts from, when one is recorded.
    branch: Option<(Vec<Event>, Meta)>,
}

impl Recorder {
    async fn report(
        self,
        mut first: Option<Result<Step, SimOutcome>>,
        mut turns: Turns,
        mut run: AbortOnDrop<Outcome<()>>,
        mut run_done: bool,
        tx: mpsc::Sender<Outcome<Report>>,
    ) {
        let mut branch = match self.branch_start().await {
            Ok(branch) => branch,
            Err(failure) => {
                let _ = tx.send(Err(failure)).await;
                return;
            }
        };
        let mut outcome = None;
        loop {
            let item = match first.take() {
                Some(item) => item,
                None => tokio::select! {
                    item = turns.recv() => match item {
                        Some(item) => item,
                        None => break,
                    },
                    done = &mut run.0, if !run_done => {
                        run_done = true;
                        if let Err(failure) = joined(done) {
                            let _ = tx.send(Err(failure)).await;
                            return;
                        }
                        continue;
                    }
                },
            };
            match item {
                Ok(step) => {
                    self.replay(&mut branch, &step);
                    if tx.send(Ok(Report::Turn(step))).await.is_err() {
                        return;
                    }
                }
                Err(o) => outcome = Some(o),
            }
        }
        if !run_done {
            if let Err(failure) = joined((&mut run.0).await) {
                let _ = tx.send(Err(failure)).await;
                return;
            }
        }
        let Some(o) = outcome else { return };
        let recorded = match branch {
            Some(branch) => self.record(branch).await,
            None => Ok(String::new()),
        };
        let _ = tx.send(recorded.map(|id| Report::End(o, id))).await;
    }

    /// The branch's negotiation at round 0, with its offers' analysis (a heavy call too).
    async fn branch_start(&self) -> Outcome<Option<(Negotiation, Vec<Event>)>> {
        let Some((events, _)) = &self.branch else {
            return Ok(None);
        };
        let Ok(mut b) = Negotiation::replay(events) else {
            return Ok(None);
        };
        let positions = b.positions.iter().flatten().cloned().collect();
        let job = evaluation_job(b.space.clone(), positions);
        let solved = self.app.heavy.run("a simulation's branch", job).await?;
        let version = b.version;
        b.install_analysis(version, solved);
        Ok(Some((b, events.clone())))
    }

    /// Plays `step` on the branch; a step that does not replay drops the branch.
    fn replay(&self, branch: &mut Option<(Negotiation, Vec<Event>)>, step: &Step) {
        let Some((b, events)) = branch.as_mut() else {
            return;
        };
        let party = self.parties[step.party].clone();
        let command = match &step.action {
            Action::Offer(p) => Command::Offer {
                party,
                package: p.clone(),
            },
            Action::Accept => Command::Respond {
                party,
                offer: b.offers.len().saturating_sub(1) as u32,
                accept: true,
            },
        };
        match b.execute(&command) {
            Ok(new) => events.extend(new),
            Err(e) => {
                tracing::warn!(error = %e, "simulation step does not replay as a negotiation; branch not recorded");
                *branch = None;
            }
        }
    }

    /// Records the branch as a new negotiation; its id.
    async fn record(&self, (_, mut events): (Negotiation, Vec<Event>)) -> Outcome<String> {
        let Some((_, meta)) = &self.branch else {
            return Ok(String::new());
        };
        if let Some(Event::Created { title, .. }) = events.first_mut() {
            *title = format!("{title} (simulated, seed {})", self.seed);
        }
        let branch_meta = Meta {
            id: 0,
            effects: meta.effects.clone(),
            forked_from: Some(public_id(meta.id)),
            forked_after_round: 0,
        };
        let entry = self.app.record(events, branch_meta).await?;
        Ok(public_id(entry.meta.id))
    }
}
