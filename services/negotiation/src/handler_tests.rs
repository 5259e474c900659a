//! The handlers and the application called in process: no binary, no socket. What needs a
//! process (signals, crashes, TLS, grpcurl, the limits of the server stack) is in the
//! end-to-end suite.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_stream::StreamExt;
use tonic::{Code, Request};
use tradepact_proto::negotiation_v1 as pb;
use tradepact_proto::negotiation_v1::negotiation_service_server::NegotiationService;
use tradepact_rpc::auth::{hash_token, Principal, TokenStore};

use crate::app::cache::AnalysisCache;
use crate::app::log::{EventLog, EventStore, LogError, Meta};
use crate::app::{log_failure, Negotiations};
use crate::{DataServiceConfig, NegotiationLimits, NegotiationSvc};

struct Service {
    svc: NegotiationSvc,
    app: Arc<Negotiations>,
    /// Dropping it would stop the heavy computations, as at shutdown.
    _closer: crate::app::Closer,
    _dir: tempfile::TempDir,
}

fn service(cache: AnalysisCache) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let log = crate::Log::local(dir.path(), 0).unwrap();
    // Nobody listens there: impact estimates are not called here.
    let data = DataServiceConfig::plain("http://127.0.0.1:9");
    let (svc, app, closer) =
        crate::service(log, data, NegotiationLimits::default(), cache).unwrap();
    Service {
        svc,
        app,
        _closer: closer,
        _dir: dir,
    }
}

/// A request from a caller allowed everything (authentication off).
fn req<T>(message: T) -> Request<T> {
    as_caller(message, Arc::new(Principal::unrestricted()))
}

fn as_caller<T>(message: T, principal: Arc<Principal>) -> Request<T> {
    let mut r = Request::new(message);
    r.extensions_mut().insert(principal);
    r
}

/// A caller with `scopes` only.
fn token(scopes: &str) -> Arc<Principal> {
    let store = TokenStore::parse(&format!("{} t {scopes}", hash_token("t"))).unwrap();
    store.authenticate("t").unwrap().clone()
}

fn issue(id: &str, options: &[&str]) -> pb::Issue {
    pb::Issue {
        id: id.into(),
        label: id.into(),
        options: options
            .iter()
            .map(|o| pb::IssueOption {
                id: (*o).into(),
                label: (*o).into(),
                trade_effects: vec![],
            })
            .collect(),
    }
}

/// A position valuing the options of issues `autos` and `beef` as given.
fn position(weights: [f64; 2], autos: [f64; 3], beef: [f64; 3], reservation: f64) -> pb::Position {
    let values = |v: [f64; 3]| pb::OptionValues {
        values: ["a", "b", "c"]
            .iter()
            .zip(v)
            .map(|(o, x)| ((*o).to_owned(), x))
            .collect(),
    };
    pb::Position {
        weights: HashMap::from([("autos".into(), weights[0]), ("beef".into(), weights[1])]),
        values: HashMap::from([
            ("autos".into(), values(autos)),
            ("beef".into(), values(beef)),
        ]),
        reservation_value: reservation,
    }
}

/// A bilateral negotiation with opposed interests on two issues of three options, both
/// positions set; its id.
async fn negotiation(svc: &NegotiationSvc, title: &str) -> String {
    let created = svc
        .create_negotiation(req(pb::CreateNegotiationRequest {
            title: title.into(),
            agreement: "KORUS".into(),
            parties: vec!["USA".into(), "KOR".into()],
            issues: vec![
                issue("autos", &["a", "b", "c"]),
                issue("beef", &["a", "b", "c"]),
            ],
            deadline_rounds: 5,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    let positions = [
        (
            "USA",
            position([0.7, 0.3], [1.0, 0.6, 0.0], [1.0, 0.5, 0.0], 0.2),
        ),
        (
            "KOR",
            position([0.4, 0.6], [0.0, 0.5, 1.0], [0.0, 0.4, 1.0], 0.2),
        ),
    ];
    for (party, position) in positions {
        svc.set_position(req(pb::SetPositionRequest {
            negotiation_id: created.id.clone(),
            party: party.into(),
            position: Some(position),
        }))
        .await
        .unwrap();
    }
    created.id
}

fn choice(issue: &str, option: &str) -> pb::Choice {
    pb::Choice {
        issue_id: issue.into(),
        option_id: option.into(),
    }
}

#[tokio::test]
async fn a_negotiation_runs_through_the_handlers_in_process() {
    let s = service(AnalysisCache::default());
    let id = negotiation(&s.svc, "in process").await;
    // An offer is evaluated for a caller who sees both parties.
    let offer = s
        .svc
        .submit_offer(req(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "USA".into(),
            package: Some(pb::Package {
                choices: vec![choice("autos", "a"), choice("beef", "b")],
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .offer
        .unwrap();
    let evaluation = offer.evaluation.unwrap();
    assert_eq!(evaluation.utilities.len(), 2);
    assert!(evaluation.pareto_optimal.is_some());
    // The analysis pages through its frontier; its standings agree with the evaluation.
    let analyze = |token: String| {
        req(pb::AnalyzeNegotiationRequest {
            id: id.clone(),
            page_size: 2,
            page_token: token,
            ..Default::default()
        })
    };
    let first = s.svc.analyze_negotiation(analyze(String::new())).await;
    let first = first.unwrap().into_inner();
    assert!(first.frontier_size > 2, "{first:?}");
    assert_eq!(first.frontier.len(), 2);
    assert_eq!(
        first.offers[0].pareto_optimal,
        evaluation.pareto_optimal.unwrap()
    );
    let mut seen = first.frontier.len();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = s.svc.analyze_negotiation(analyze(token)).await.unwrap();
        let page = page.into_inner();
        seen += page.frontier.len();
        token = page.next_page_token;
    }
    assert_eq!(seen as u64, first.frontier_size);
    // KOR accepts: agreed.
    let answered = s
        .svc
        .respond_to_offer(req(pb::RespondToOfferRequest {
            negotiation_id: id.clone(),
            party: "KOR".into(),
            offer_id: 0,
            accept: true,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.status(), pb::NegotiationStatus::Agreed);
    // The watch replays every event from the one asked for.
    let watch = s.svc.watch_negotiation(req(pb::WatchNegotiationRequest {
        id: id.clone(),
        from_event: 1,
        include_positions: false,
    }));
    let mut stream = watch.await.unwrap().into_inner();
    let mut numbers = Vec::new();
    for _ in 0..4 {
        numbers.push(stream.next().await.unwrap().unwrap().event_number);
    }
    assert_eq!(numbers, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn lists_page_newest_first_and_bad_requests_name_the_field() {
    let s = service(AnalysisCache::default());
    for title in ["one", "two", "three"] {
        negotiation(&s.svc, title).await;
    }
    let list = |token: String| {
        req(pb::ListNegotiationsRequest {
            page_size: 2,
            page_token: token,
            ..Default::default()
        })
    };
    let first = s.svc.list_negotiations(list(String::new())).await.unwrap();
    let first = first.into_inner();
    let titles: Vec<&str> = first
        .negotiations
        .iter()
        .map(|n| n.title.as_str())
        .collect();
    assert_eq!(titles, ["three", "two"]);
    assert!(first.negotiations.iter().all(|n| n.issues.is_empty()));
    let second = s.svc.list_negotiations(list(first.next_page_token)).await;
    let second = second.unwrap().into_inner();
    assert_eq!(second.negotiations.len(), 1);
    assert_eq!(second.negotiations[0].title, "one");
    assert!(second.next_page_token.is_empty());
    // Bad input: the field is named.
    let bad = s.svc.list_negotiations(req(pb::ListNegotiationsRequest {
        page_size: -1,
        ..Default::default()
    }));
    let status = bad.await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("page_size"), "{status:?}");
    let get = |id: &str| {
        req(pb::GetNegotiationRequest {
            id: id.into(),
            include_positions: false,
        })
    };
    let status = s.svc.get_negotiation(get("nope")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = s.svc.get_negotiation(get("neg-000099")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn an_analysis_needs_every_party_and_a_party_acts_only_for_itself() {
    let s = service(AnalysisCache::default());
    let id = negotiation(&s.svc, "scopes").await;
    let kor = token("negotiation:read,negotiation:position:KOR");
    let analysis = s.svc.analyze_negotiation(as_caller(
        pb::AnalyzeNegotiationRequest {
            id: id.clone(),
            ..Default::default()
        },
        kor.clone(),
    ));
    let status = analysis.await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("negotiation:position:USA"),
        "{status:?}"
    );
    let as_usa = s.svc.break_off(as_caller(
        pb::BreakOffRequest {
            negotiation_id: id.clone(),
            party: "USA".into(),
            reason: "not mine to say".into(),
        },
        kor,
    ));
    assert_eq!(as_usa.await.unwrap_err().code(), Code::PermissionDenied);
    let n = s.app.get(&id).await.unwrap();
    assert_eq!(n.negotiation.status, tradepact_bargain::Status::Open);
}

#[tokio::test]
async fn the_analysis_cache_holds_no_more_than_its_budget() {
    // Room for a few frontiers, not for all of them.
    let budget = 7;
    let s = service(AnalysisCache::new(budget, budget));
    let mut computed = 0;
    for i in 0..8 {
        let id = negotiation(&s.svc, &format!("n{i}")).await;
        let analysis = s
            .svc
            .analyze_negotiation(req(pb::AnalyzeNegotiationRequest {
                id,
                ..Default::default()
            }));
        computed += analysis.await.unwrap().into_inner().frontier_size as usize;
        // What the negotiations hold is what the budget counts, and within it.
        let mut held = 0;
        for entry in s.app.loaded().await {
            let entry = entry.lock().await;
            held += entry
                .negotiation
                .kept_analysis()
                .map_or(0, |a| a.frontier.points.len());
        }
        assert_eq!(held, s.app.cache.used());
        assert!(held <= budget, "{held} points held, budget {budget}");
    }
    assert!(
        computed > 2 * budget,
        "the test must fill the cache past its budget: {computed}"
    );
    assert!(s.app.cache.used() > 0, "what fits is kept");
}

#[test]
fn an_append_that_does_not_follow_the_last_event_is_a_conflict_answered_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(dir.path()).unwrap();
    let id = log.next_id().unwrap();
    let mut meta = Meta::new(Vec::new());
    meta.id = id;
    let created = tradepact_bargain::Negotiation::create(
        "t",
        "a",
        vec!["A".into(), "B".into()],
        vec![tradepact_bargain::Issue {
            id: "i".into(),
            label: "i".into(),
            options: vec![
                tradepact_bargain::OptionDef {
                    id: "x".into(),
                    label: "x".into(),
                },
                tradepact_bargain::OptionDef {
                    id: "y".into(),
                    label: "y".into(),
                },
            ],
        }],
        3,
        tradepact_bargain::TurnRule::default(),
    )
    .unwrap();
    log.create(&meta, std::slice::from_ref(&created), None)
        .unwrap();
    let event = crate::app::log::encode(&[tradepact_bargain::Event::DeadlineReached]);
    log.append(id, 1, event.clone(), None).unwrap();
    for first in [1, 3] {
        let conflict = log.append(id, first, event.clone(), None).unwrap_err();
        assert!(matches!(conflict, LogError::Conflict(_)), "{conflict}");
        let status = tradepact_rpc::status::of(log_failure(conflict));
        assert_eq!(status.code(), Code::Aborted);
    }
    let (_, events, _) = log.load_one(id).unwrap();
    assert_eq!(events.len(), 2, "nothing written by the refused appends");
}
