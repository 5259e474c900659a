//! The event-sourced state machine: legal flows, illegal moves, replay.

use std::collections::HashMap;

use tradepact_bargain::{
    Command, Error, Event, Issue, Negotiation, OptionDef, PositionSpec, Status, TurnRule,
};

fn issues() -> Vec<Issue> {
    let issue = |id: &str, options: &[&str]| Issue {
        id: id.into(),
        label: id.into(),
        options: options
            .iter()
            .map(|o| OptionDef {
                id: (*o).into(),
                label: (*o).into(),
            })
            .collect(),
    };
    vec![
        issue("tariff", &["keep", "cut"]),
        issue("quota", &["high", "low"]),
    ]
}

fn spec(w_tariff: f64, tariff: [f64; 2], quota: [f64; 2]) -> PositionSpec {
    PositionSpec {
        weights: HashMap::from([
            ("tariff".into(), w_tariff),
            ("quota".into(), 1.0 - w_tariff),
        ]),
        values: HashMap::from([
            (
                "tariff".into(),
                HashMap::from([("keep".into(), tariff[0]), ("cut".into(), tariff[1])]),
            ),
            (
                "quota".into(),
                HashMap::from([("high".into(), quota[0]), ("low".into(), quota[1])]),
            ),
        ]),
        reservation: 0.2,
    }
}

struct Log {
    n: Negotiation,
    events: Vec<Event>,
}

impl Log {
    fn new(deadline: u32) -> Log {
        Log::with(&["US", "KOR"], deadline, TurnRule::OffersInOrder)
    }

    fn with(parties: &[&str], deadline: u32, rule: TurnRule) -> Log {
        let created = Negotiation::create(
            "KORUS",
            "KORUS FTA",
            parties.iter().map(|p| p.to_string()).collect(),
            issues(),
            deadline,
            rule,
        )
        .unwrap();
        let n = Negotiation::replay([&created]).unwrap();
        Log {
            n,
            events: vec![created],
        }
    }

    fn run(&mut self, c: Command) -> Result<Vec<Event>, Error> {
        let e = self.n.execute(&c)?;
        self.events.extend(e.clone());
        Ok(e)
    }

    fn offer(&mut self, party: &str, tariff: &str, quota: &str) -> Result<Vec<Event>, Error> {
        let package = self
            .n
            .space
            .package([("tariff", tariff), ("quota", quota)])?;
        self.run(Command::Offer {
            party: party.into(),
            package,
        })
    }

    fn respond(&mut self, party: &str, offer: u32, accept: bool) -> Result<Vec<Event>, Error> {
        self.run(Command::Respond {
            party: party.into(),
            offer,
            accept,
        })
    }
}

fn illegal(r: Result<Vec<Event>, Error>) -> String {
    match r {
        Err(Error::Illegal(why)) => why,
        other => panic!("expected an illegal move, got {other:?}"),
    }
}

#[test]
fn offers_and_acceptance_reach_agreement_with_evaluations_and_replay_to_the_same_state() {
    let mut log = Log::new(5);
    log.run(Command::SetPosition {
        party: "US".into(),
        position: spec(0.6, [1.0, 0.0], [1.0, 0.0]),
    })
    .unwrap();
    log.run(Command::SetPosition {
        party: "KOR".into(),
        position: spec(0.3, [0.0, 1.0], [0.0, 1.0]),
    })
    .unwrap();

    log.offer("US", "keep", "high").unwrap();
    assert!(illegal(log.offer("US", "keep", "low")).contains("KOR's turn"));
    assert!(illegal(log.respond("US", 0, true)).contains("own offer"));
    log.respond("KOR", 0, false).unwrap();
    assert!(illegal(log.respond("KOR", 0, true)).contains("no open offer"));

    let made = log.offer("KOR", "cut", "low").unwrap();
    let Event::OfferMade {
        evaluation: Some(ev),
        ..
    } = &made[0]
    else {
        panic!("{made:?}")
    };
    assert_eq!(ev.utilities, vec![0.0, 1.0]);
    assert_eq!(ev.concession, None);
    assert!(
        !ev.pareto_optimal,
        "(cut, low) gives the US less than its reservation value"
    );

    // The US concedes from (keep, high) [1.0] to (keep, low) [0.6].
    let made = log.offer("US", "keep", "low").unwrap();
    let Event::OfferMade {
        evaluation: Some(ev),
        ..
    } = &made[0]
    else {
        panic!()
    };
    assert!((ev.concession.unwrap() - 0.4).abs() < 1e-9);
    assert!(ev.pareto_optimal);
    assert_eq!(ev.distance_to_nash, Some(0.0));

    assert!(illegal(log.respond("KOR", 1, true)).contains("not the open offer"));
    let done = log.respond("KOR", 2, true).unwrap();
    assert!(matches!(done.last(), Some(Event::Agreed { offer: 2 })));
    assert_eq!(log.n.status, Status::Agreed);
    assert!(illegal(log.offer("KOR", "cut", "low")).contains("already agreed"));

    // The log survives serialisation and replays to the same state.
    let json = serde_json::to_string(&log.events).unwrap();
    let events: Vec<Event> = serde_json::from_str(&json).unwrap();
    let replayed = Negotiation::replay(&events).unwrap();
    assert_eq!(replayed.status, Status::Agreed);
    assert_eq!(replayed.agreed, Some(2));
    assert_eq!(replayed.offers, log.n.offers);
    assert_eq!(replayed.version, log.events.len() as u64);
}

#[test]
fn rejecting_the_last_offer_the_deadline_allows_breaks_off() {
    let mut log = Log::new(1);
    log.offer("US", "keep", "high").unwrap();
    log.respond("KOR", 0, false).unwrap();
    log.offer("KOR", "cut", "low").unwrap();
    let ev = log.respond("US", 1, false).unwrap();
    assert!(matches!(ev.last(), Some(Event::DeadlineReached)));
    assert_eq!(log.n.status, Status::BrokenOff);
    assert!(log.n.ended_because.as_deref().unwrap().contains("deadline"));
    assert!(illegal(log.offer("US", "keep", "low")).contains("broken off"));
}

#[test]
fn bad_inputs_are_invalid_not_panics() {
    assert!(matches!(
        Negotiation::create("t", "a", vec!["US".into()], issues(), 3, TurnRule::Stacked),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        Negotiation::create(
            "t",
            "a",
            vec!["US".into(), "US".into()],
            issues(),
            3,
            TurnRule::Stacked
        ),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        Negotiation::create(
            "t",
            "a",
            vec!["US".into(), "KOR".into()],
            issues(),
            0,
            TurnRule::Stacked
        ),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        Negotiation::create(
            "t",
            "a",
            vec!["US".into(), "KOR".into()],
            vec![],
            3,
            TurnRule::Stacked
        ),
        Err(Error::Invalid { .. })
    ));
    // Names are bounded: a summary of every negotiation stays in memory.
    let long = "x".repeat(257);
    for (title, agreement, party) in [
        (long.as_str(), "a", "US"),
        ("t", long.as_str(), "US"),
        ("t", "a", &long[..65]),
    ] {
        let created = Negotiation::create(
            title,
            agreement,
            vec![party.into(), "KOR".into()],
            issues(),
            3,
            TurnRule::default(),
        );
        assert!(matches!(created, Err(Error::Invalid { .. })), "{created:?}");
    }
    assert!(Negotiation::create(
        &long[..256],
        &long[..256],
        vec![long[..64].into(), "KOR".into()],
        issues(),
        3,
        TurnRule::default(),
    )
    .is_ok());

    let mut log = Log::new(3);
    // Incomplete package, unknown option, a party not in the negotiation, a bad position.
    let incomplete = log.n.space.package([("tariff", "keep")]).unwrap_err();
    assert!(
        incomplete.to_string().contains("missing: quota"),
        "{incomplete}"
    );
    assert!(log.offer("US", "keep", "medium").is_err());
    assert!(matches!(
        log.offer("JPN", "keep", "low"),
        Err(Error::Invalid { .. })
    ));
    let mut zero = spec(0.5, [1.0, 0.0], [1.0, 0.0]);
    zero.weights.values_mut().for_each(|w| *w = 0.0);
    assert!(matches!(
        log.run(Command::SetPosition {
            party: "US".into(),
            position: zero
        }),
        Err(Error::Invalid { .. })
    ));
    // A log that does not start with a creation does not replay.
    assert!(Negotiation::replay(&[Event::DeadlineReached]).is_err());
    // Nothing above changed the state.
    assert_eq!(log.n.version, 1);
    assert_eq!(log.n.offers.len(), 0);
}

#[test]
fn stacked_turns_let_a_party_accept_and_the_next_counter_offer() {
    let mut log = Log::with(&["US", "KOR", "JPN"], 2, TurnRule::Stacked);
    log.offer("US", "keep", "high").unwrap();
    // JPN may not answer before KOR: the turns go round.
    assert!(illegal(log.respond("JPN", 0, true)).contains("KOR's turn"));
    log.respond("KOR", 0, true).unwrap();
    // JPN counter-offers where the offers-in-order rule would want KOR's offer.
    assert!(illegal(log.offer("KOR", "cut", "low")).contains("JPN's turn"));
    log.offer("JPN", "cut", "low").unwrap();
    assert!(illegal(log.respond("KOR", 1, true)).contains("US's turn"));
    log.respond("US", 1, true).unwrap();
    assert_eq!(log.n.status, Status::Open);
    let events = log.respond("KOR", 1, true).unwrap();
    assert_eq!(events.last(), Some(&Event::Agreed { offer: 1 }));
    assert_eq!((log.n.agreed, log.n.turns), (Some(1), 5));
    assert_eq!(log.n.offers[1].round, 1);
    assert_eq!(log.n.offers[1].accepted_by, vec![0, 1]);
    // The offers-in-order rule refuses the same history.
    let mut old = Log::with(&["US", "KOR", "JPN"], 2, TurnRule::OffersInOrder);
    old.offer("US", "keep", "high").unwrap();
    old.respond("KOR", 0, true).unwrap();
    assert!(illegal(old.offer("JPN", "cut", "low")).contains("KOR's turn"));

    let replayed = Negotiation::replay(&log.events).unwrap();
    assert_eq!(
        (
            replayed.status,
            replayed.agreed,
            replayed.turns,
            replayed.version
        ),
        (log.n.status, log.n.agreed, log.n.turns, log.n.version)
    );
}

#[test]
fn stacked_rejection_passes_the_turn_and_the_last_turn_reaches_the_deadline() {
    let mut log = Log::with(&["US", "KOR", "JPN"], 1, TurnRule::Stacked);
    log.offer("US", "keep", "high").unwrap();
    log.respond("KOR", 0, false).unwrap();
    // Nothing is open: JPN must offer.
    assert!(illegal(log.respond("JPN", 0, true)).contains("no open offer"));
    assert_eq!(log.n.next_proposer(), 2);
    let events = log.offer("JPN", "cut", "low").unwrap();
    // JPN's offer took round 1's last turn: nobody can answer it.
    assert_eq!(events.last(), Some(&Event::DeadlineReached));
    assert_eq!(log.n.status, Status::BrokenOff);
    assert!(log.n.ended_because.as_deref().unwrap().contains("deadline"));
    assert!(Negotiation::replay(&log.events).is_ok());

    // A log whose deadline comes early, or whose response is out of turn, does not replay.
    let mut early = log.events[..2].to_vec();
    early.push(Event::DeadlineReached);
    assert!(Negotiation::replay(&early).is_err());
    let mut out_of_turn = log.events[..2].to_vec();
    out_of_turn.push(Event::OfferAccepted {
        party: "JPN".into(),
        offer: 0,
    });
    assert!(Negotiation::replay(&out_of_turn).is_err());
}

#[test]
fn logs_written_before_the_turn_rule_replay_with_offers_in_order() {
    let old = serde_json::json!({
        "type": "created", "title": "t", "agreement": "a", "parties": ["US", "KOR"],
        "issues": issues(), "deadline_rounds": 3
    });
    let created: Event = serde_json::from_value(old).unwrap();
    let n = Negotiation::replay([&created]).unwrap();
    assert_eq!(n.turn_rule, TurnRule::OffersInOrder);
    let again: Event = serde_json::from_str(&serde_json::to_string(&created).unwrap()).unwrap();
    assert_eq!(again, created);
}
