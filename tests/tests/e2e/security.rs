//! TLS, mutual TLS and bearer-token scopes on both services, with certificates made in the
//! test (rcgen) and tokens kept hashed in a file.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::Code;
use tradepact_client::{authorized, TlsFiles, DEFAULT_DEADLINE};
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{key, write_request, Process};

pub(crate) struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, in `dir`;
    /// plus a second, unrelated CA.
    pub(crate) fn new(dir: &Path) -> Pki {
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Names of their own: with the default empty ones, OpenSSL-based clients (Python's
        // grpcio) take a certificate whose issuer equals its subject for self-signed.
        let dn_of = |cn: &str| {
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(rcgen::DnType::CommonName, cn);
            dn
        };
        ca_params.distinguished_name = dn_of("tradepact test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        write("ca.pem", ca_cert.pem());
        let issuer = Issuer::new(ca_params, ca_key);
        for (name, sans) in [
            (
                "server",
                vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ),
            ("client", vec!["negotiation".to_owned()]),
        ] {
            let k = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.distinguished_name = dn_of(name);
            let cert = params.signed_by(&k, &issuer).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), k.serialize_pem());
        }
        let other_key = KeyPair::generate().unwrap();
        let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        write("other-ca.pem", other.self_signed(&other_key).unwrap().pem());
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap()
    }

    pub(crate) fn client_tls(&self, ca: &str, with_cert: bool) -> TlsFiles {
        TlsFiles {
            ca: self.read(ca),
            identity: with_cert.then(|| (self.read("client.pem"), self.read("client.key"))),
            domain: Some("localhost".into()),
        }
    }
}

const TOKENS: &[(&str, &str, &str)] = &[
    ("reader-secret-1", "reader", "data:read,negotiation:read"),
    (
        "writer-secret-2",
        "writer",
        "data:read,data:write,negotiation:read,negotiation:write",
    ),
    (
        "us-secret-3",
        "us-delegation",
        "negotiation:read,negotiation:position:US",
    ),
    ("service-secret-4", "negotiation-service", "data:read"),
];

fn tokens_file(dir: &Path) -> String {
    let text: String = TOKENS
        .iter()
        .map(|(t, name, scopes)| format!("{} {name} {scopes}\n", tradepact_rpc_hash(t)))
        .collect();
    let path = dir.join("tokens");
    std::fs::write(&path, format!("# test tokens\n{text}")).unwrap();
    path.to_str().unwrap().to_owned()
}

pub(crate) fn tradepact_rpc_hash(token: &str) -> String {
    // The CLI prints the same line: `tradepact hash-token TOKEN`.
    let out = std::process::Command::new(tradepact_tests::binary("tradepact"))
        .args(["hash-token", token])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mutual_tls_and_scopes_on_both_services() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let tokens = tokens_file(dir.path());
    let data_dir = dir.path().join("data");
    let data = Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--tls-cert",
            &pki.path("server.pem"),
            "--tls-key",
            &pki.path("server.key"),
            "--tls-client-ca",
            &pki.path("ca.pem"),
            "--tokens-file",
            &tokens,
        ],
    );
    let data_url = format!(
        "https://localhost:{}",
        data.addr.rsplit(':').next().unwrap()
    );

    // TLS: a client that trusts another CA is refused; mutual TLS: so is one without a
    // client certificate.
    assert!(
        tradepact_client::channel_with(&data_url, Some(&pki.client_tls("other-ca.pem", true)))
            .await
            .is_err()
    );
    let no_cert =
        tradepact_client::channel_with(&data_url, Some(&pki.client_tls("ca.pem", false))).await;
    if let Ok(channel) = no_cert {
        // The handshake may complete lazily; the first call must fail then.
        let mut c = tradepact_client::data::client(channel);
        assert!(c
            .list_series(data_pb::ListSeriesRequest::default())
            .await
            .is_err());
    }
    let channel = tradepact_client::channel_with(&data_url, Some(&pki.client_tls("ca.pem", true)))
        .await
        .unwrap();
    let mut d = tradepact_client::data::client(channel);

    // Scopes on the data service, both ways.
    let kor = key(
        "USA",
        "KOR",
        data_pb::Flow::Export,
        data_pb::TradeKind::Goods,
        "TOTAL",
        data_pb::Frequency::Annual,
    );
    let write = |token: Option<&str>| {
        authorized(
            write_request(kor.clone(), &[("2016", 42.3e9)]),
            DEFAULT_DEADLINE,
            token,
        )
    };
    assert_eq!(
        d.write_points(write(None)).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        d.write_points(write(Some("not-a-token")))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        d.write_points(write(Some("reader-secret-1")))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    d.write_points(write(Some("writer-secret-2")))
        .await
        .unwrap();
    let read = |token| {
        authorized(
            data_pb::GetSeriesRequest {
                key: Some(kor.clone()),
                ..Default::default()
            },
            DEFAULT_DEADLINE,
            token,
        )
    };
    assert_eq!(
        d.get_series(read(Some("us-secret-3")))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        d.get_series(read(Some("reader-secret-1")))
            .await
            .unwrap()
            .into_inner()
            .values
            .len(),
        1
    );

    // Health and reflection stay open (grpcurl over mutual TLS, no token).
    let out = std::process::Command::new("grpcurl")
        .args([
            "-cacert",
            &pki.path("ca.pem"),
            "-cert",
            &pki.path("client.pem"),
            "-key",
            &pki.path("client.key"),
            "-servername",
            "localhost",
            &data.addr,
            "list",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tradepact.data.v1.TradeDataService"),
        "{out:?}"
    );

    // The negotiation service: TLS, tokens, and mutual TLS plus a token towards the data service.
    let neg_dir = dir.path().join("neg");
    let neg = Process::start_with_env(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            neg_dir.to_str().unwrap(),
            "--tls-cert",
            &pki.path("server.pem"),
            "--tls-key",
            &pki.path("server.key"),
            "--tokens-file",
            &tokens,
            "--data-service",
            &data_url,
            "--data-service-ca",
            &pki.path("ca.pem"),
            "--data-service-cert",
            &pki.path("client.pem"),
            "--data-service-key",
            &pki.path("client.key"),
        ],
        &[("TRADEPACT_DATA_SERVICE_TOKEN", "service-secret-4")],
    );
    let neg_url = format!("https://localhost:{}", neg.addr.rsplit(':').next().unwrap());
    let channel = tradepact_client::channel_with(&neg_url, Some(&pki.client_tls("ca.pem", false)))
        .await
        .unwrap();
    let mut n = tradepact_client::negotiation::client(channel);
    let create = |token| {
        authorized(
            pb::CreateNegotiationRequest {
                title: "t".into(),
                agreement: "a".into(),
                parties: vec!["US".into(), "KOR".into()],
                issues: vec![pb::Issue {
                    id: "cars".into(),
                    label: "cars".into(),
                    options: vec![
                        pb::IssueOption {
                            id: "keep".into(),
                            label: "keep".into(),
                            trade_effects: vec![],
                        },
                        pb::IssueOption {
                            id: "open".into(),
                            label: "open".into(),
                            trade_effects: vec![pb::TradeEffect {
                                reporter: "USA".into(),
                                partner: "KOR".into(),
                                flow: data_pb::Flow::Export.into(),
                                product: "TOTAL".into(),
                                base_tariff_percent: 4.0,
                                tariff_change_points: -1.0,
                                import_demand_elasticity: None,
                                substitution_elasticity: None,
                                note: String::new(),
                                ..Default::default()
                            }],
                        },
                    ],
                }],
                deadline_rounds: 3,
                ..Default::default()
            },
            DEFAULT_DEADLINE,
            token,
        )
    };
    assert_eq!(
        n.create_negotiation(create(Some("reader-secret-1")))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let id = n
        .create_negotiation(create(Some("writer-secret-2")))
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;

    let position = |party: &str, token| {
        let v = if party == "US" {
            [("keep", 1.0), ("open", 0.0)]
        } else {
            [("keep", 0.0), ("open", 1.0)]
        };
        authorized(
            pb::SetPositionRequest {
                negotiation_id: id.clone(),
                party: party.into(),
                position: Some(pb::Position {
                    weights: [("cars".to_owned(), 1.0)].into(),
                    values: [(
                        "cars".to_owned(),
                        pb::OptionValues {
                            values: v.iter().map(|(k, x)| ((*k).to_owned(), *x)).collect(),
                        },
                    )]
                    .into(),
                    reservation_value: 0.0,
                }),
            },
            DEFAULT_DEADLINE,
            token,
        )
    };
    // A party's position needs that party's scope: the writer has none, the US delegation only US's.
    assert_eq!(
        n.set_position(position("US", Some("writer-secret-2")))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    n.set_position(position("US", Some("us-secret-3")))
        .await
        .unwrap();
    assert_eq!(
        n.set_position(position("KOR", Some("us-secret-3")))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    let get = |token| {
        authorized(
            pb::GetNegotiationRequest {
                id: id.clone(),
                include_positions: true,
            },
            DEFAULT_DEADLINE,
            token,
        )
    };
    let seen = n
        .get_negotiation(get(Some("us-secret-3")))
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    assert_eq!(
        seen.positions
            .iter()
            .map(|p| p.party.as_str())
            .collect::<Vec<_>>(),
        vec!["US"]
    );
    let seen = n
        .get_negotiation(get(Some("reader-secret-1")))
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    assert!(seen.positions.is_empty());

    // The impact estimate crosses to the data service over mutual TLS with the service's token.
    let impact = n
        .estimate_impact(authorized(
            pb::EstimateImpactRequest {
                id: id.clone(),
                package: Some(pb::Package {
                    choices: vec![pb::Choice {
                        issue_id: "cars".into(),
                        option_id: "open".into(),
                    }],
                }),
                baseline: None,
                skip_missing_baselines: false,
            },
            DEFAULT_DEADLINE,
            Some("reader-secret-1"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(impact.effects[0].baseline_usd, 42.3e9);

    // The command-line tool speaks mutual TLS and sends its token from the environment.
    let cli = |token: Option<&str>| {
        let mut cmd = std::process::Command::new(tradepact_tests::binary("tradepact"));
        cmd.args([
            "--ca",
            &pki.path("ca.pem"),
            "--client-cert",
            &pki.path("client.pem"),
            "--client-key",
            &pki.path("client.key"),
            "balance",
            "USA",
            "KOR",
            "--data-service",
            &data_url,
        ]);
        if let Some(t) = token {
            cmd.env("TRADEPACT_TOKEN", t);
        }
        cmd.output().unwrap()
    };
    let ok = cli(Some("reader-secret-1"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("42.3"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let refused = cli(None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Bearer"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Tokens never reach the logs.
    for log in [data.log(), neg.log()] {
        for (token, _, _) in TOKENS {
            assert!(!log.contains(token), "a token was logged");
        }
    }
}

/// Every RPC, both ways: for each scope an RPC needs, a token holding every scope but that one
/// is refused with PERMISSION_DENIED; a token with just the scopes it needs gets past
/// authorization. A party's RPCs are called for US on an existing negotiation, so that the
/// handler's party check runs too (a token acting for KOR is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_checks_its_scope_both_ways() {
    use tonic::Request;
    let dir = tempfile::tempdir().unwrap();
    const US: &str = "negotiation:position:US";
    let scopes = [
        "data:read",
        "data:write",
        "negotiation:read",
        "negotiation:write",
        US,
        // Not KOR's position scope: with US's, it would stand for negotiation:all-parties.
        "negotiation:all-parties",
    ];
    // What the RPCs need: one set of scopes each.
    let needs: &[&[&str]] = &[
        &["data:read"],
        &["data:write"],
        &["negotiation:read"],
        &["negotiation:write"],
        &[US],
        &["negotiation:write", US],
        &["negotiation:read", "negotiation:all-parties"],
        &["negotiation:read", "data:read"],
        &["negotiation:read", US],
    ];
    // Token "all-but:S" has every scope but S; token "only:S1+S2" has just S1 and S2.
    let mut lines = String::new();
    for s in scopes {
        let others: Vec<&str> = scopes.iter().copied().filter(|o| *o != s).collect();
        let hash = tradepact_rpc_hash(&format!("all-but:{s}"));
        lines.push_str(&format!("{hash} allbut {}\n", others.join(",")));
    }
    for set in needs {
        let hash = tradepact_rpc_hash(&format!("only:{}", set.join("+")));
        lines.push_str(&format!("{hash} only {}\n", set.join(",")));
    }
    lines.push_str(&format!("{} admin *\n", tradepact_rpc_hash("admin")));
    lines.push_str(&format!(
        "{} kor negotiation:read,negotiation:write,negotiation:position:KOR\n",
        tradepact_rpc_hash("kor")
    ));
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, lines).unwrap();
    let tokens = tokens.to_str().unwrap();
    let data_dir = dir.path().join("d");
    let data = Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--tokens-file",
            tokens,
        ],
    );
    let neg_dir = dir.path().join("n");
    let neg = Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            neg_dir.to_str().unwrap(),
            "--tokens-file",
            tokens,
            "--data-service",
            &data.url(),
        ],
    );
    let d = tradepact_client::data::connect(&data.url()).await.unwrap();
    let n = tradepact_client::negotiation::connect(&neg.url())
        .await
        .unwrap();
    // A bilateral negotiation for the party checks (positions set, so that analysis runs).
    let id = create_with_positions(&mut n.clone(), "admin").await;
    assert_eq!(id, "neg-000001");

    fn req<T>(token: &str, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        tradepact_client::add_token(&mut r, Some(token));
        r
    }
    fn code<T>(r: Result<T, tonic::Status>) -> Code {
        r.err().map_or(Code::Ok, |s| s.code())
    }
    type Call =
        Box<dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Code> + Send>>>;
    const READ: &[&str] = &["negotiation:read"];
    const WRITE: &[&str] = &["negotiation:write"];
    const ALL: &[&str] = &["negotiation:read", "negotiation:all-parties"];
    let key = key(
        "USA",
        "KOR",
        data_pb::Flow::Export,
        data_pb::TradeKind::Goods,
        "TOTAL",
        data_pb::Frequency::Annual,
    );
    let id = || "neg-000001".to_owned();
    let mut calls: Vec<(&[&str], &str, Call)> = Vec::new();
    // The message is built anew for each call, from a fresh copy of `key`.
    macro_rules! rpc {
        ($scope:expr, $name:expr, $client:expr, $method:ident, |$k:ident| $msg:expr) => {{
            let client = $client.clone();
            let key = key.clone();
            calls.push((
                $scope,
                $name,
                Box::new(move |token: String| {
                    let mut client = client.clone();
                    let $k = key.clone();
                    Box::pin(async move { code(client.$method(req(&token, $msg)).await) })
                }),
            ));
        }};
    }
    rpc!(&["data:write"], "WritePoints", d, write_points, |k| {
        write_request(k, &[("2016", 1.0)])
    });
    rpc!(
        &["data:write"],
        "StreamWritePoints",
        d,
        stream_write_points,
        |k| tokio_stream::iter(vec![data_pb::StreamWritePointsRequest {
            series: write_request(k, &[("2016", 1.0)]).series,
            ..Default::default()
        }])
    );
    rpc!(
        &["data:write"],
        "StreamWriteColumns",
        d,
        stream_write_columns,
        |k| tokio_stream::iter(vec![tradepact_client::data::columns_of(
            data_pb::StreamWritePointsRequest {
                series: write_request(k, &[("2016", 1.0)]).series,
                ..Default::default()
            }
        )])
    );
    rpc!(&["data:write"], "DeleteSeries", d, delete_series, |k| {
        data_pb::DeleteSeriesRequest { key: Some(k) }
    });
    rpc!(&["data:read"], "GetSeries", d, get_series, |k| {
        data_pb::GetSeriesRequest {
            key: Some(k),
            ..Default::default()
        }
    });
    rpc!(&["data:read"], "StreamSeries", d, stream_series, |k| {
        data_pb::StreamSeriesRequest {
            key: Some(k),
            ..Default::default()
        }
    });
    rpc!(
        &["data:read"],
        "StreamSeriesColumns",
        d,
        stream_series_columns,
        |k| {
            data_pb::StreamSeriesColumnsRequest {
                key: Some(k),
                ..Default::default()
            }
        }
    );
    rpc!(&["data:read"], "ListSeries", d, list_series, |_k| {
        data_pb::ListSeriesRequest::default()
    });
    rpc!(
        &["data:read"],
        "GetTradeBalance",
        d,
        get_trade_balance,
        |_k| {
            data_pb::GetTradeBalanceRequest {
                reporter: "USA".into(),
                partner: "KOR".into(),
                ..Default::default()
            }
        }
    );
    rpc!(&["data:read"], "GetChange", d, get_change, |_k| {
        data_pb::GetChangeRequest::default()
    });
    rpc!(&["data:read"], "WatchSeries", d, watch_series, |_k| {
        data_pb::WatchSeriesRequest::default()
    });
    rpc!(&["data:read"], "ListCountries", d, list_countries, |_k| {
        data_pb::ListCountriesRequest::default()
    });
    rpc!(&["data:read"], "ListGroups", d, list_groups, |_k| {
        data_pb::ListGroupsRequest::default()
    });
    rpc!(&["data:write"], "DefineGroup", d, define_group, |_k| {
        data_pb::DefineGroupRequest {
            group: Some(data_pb::Group {
                name: "MINE".into(),
                members: vec![data_pb::GroupMember {
                    code: "KOR".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    });
    rpc!(&["data:read"], "ListProducts", d, list_products, |_k| {
        data_pb::ListProductsRequest::default()
    });
    rpc!(&["data:read"], "GetMirror", d, get_mirror, |k| {
        data_pb::GetMirrorRequest {
            key: Some(k),
            ..Default::default()
        }
    });
    rpc!(&["data:read"], "ListReleases", d, list_releases, |_k| {
        data_pb::ListReleasesRequest::default()
    });
    rpc!(&["data:read"], "DiffReleases", d, diff_releases, |_k| {
        data_pb::DiffReleasesRequest::default()
    });
    rpc!(&["data:read"], "QueryTrade", d, query_trade, |_k| {
        data_pb::QueryTradeRequest {
            start_period: "2016".into(),
            end_period: "2016".into(),
            ..Default::default()
        }
    });
    rpc!(WRITE, "CreateNegotiation", n, create_negotiation, |_k| {
        pb::CreateNegotiationRequest::default()
    });
    // Acting for every party it sets a position for (here US, twice: refused as a scenario
    // once the scopes are through).
    rpc!(
        &["negotiation:write", US],
        "ImportScenario",
        n,
        import_scenario,
        |_k| {
            let file = |name: &str| pb::ScenarioFile {
                name: name.into(),
                content: "<utility_space/>".into(),
            };
            pb::ImportScenarioRequest {
                format: pb::ScenarioFormat::Genius.into(),
                domain: Some(file("domain.xml")),
                profiles: vec![file("US.xml"), file("US.xml")],
                ..Default::default()
            }
        }
    );
    rpc!(READ, "ExportScenario", n, export_scenario, |_k| {
        pb::ExportScenarioRequest {
            id: id(),
            format: pb::ScenarioFormat::Negmas.into(),
        }
    });
    rpc!(READ, "GetNegotiation", n, get_negotiation, |_k| {
        pb::GetNegotiationRequest {
            id: id(),
            include_positions: false,
        }
    });
    rpc!(READ, "ListNegotiations", n, list_negotiations, |_k| {
        pb::ListNegotiationsRequest::default()
    });
    rpc!(&[US], "SetPosition", n, set_position, |_k| {
        pb::SetPositionRequest {
            negotiation_id: id(),
            party: "US".into(),
            position: None,
        }
    });
    rpc!(&[US], "SubmitOffer", n, submit_offer, |_k| {
        pb::SubmitOfferRequest {
            negotiation_id: id(),
            party: "US".into(),
            package: None,
        }
    });
    rpc!(&[US], "RespondToOffer", n, respond_to_offer, |_k| {
        pb::RespondToOfferRequest {
            negotiation_id: id(),
            party: "US".into(),
            ..Default::default()
        }
    });
    rpc!(&[US], "BreakOff", n, break_off, |_k| {
        pb::BreakOffRequest {
            negotiation_id: id(),
            party: "US".into(),
            // Refused below for lack of a scope; with one it breaks off, so it comes last.
            reason: "end of the scope test".into(),
        }
    });
    rpc!(ALL, "AnalyzeNegotiation", n, analyze_negotiation, |_k| {
        pb::AnalyzeNegotiationRequest {
            id: id(),
            ..Default::default()
        }
    });
    rpc!(ALL, "AnalyzeRobustness", n, analyze_robustness, |_k| {
        pb::AnalyzeRobustnessRequest {
            id: id(),
            weight_spread: 0.1,
            samples: 5,
            ..Default::default()
        }
    });
    rpc!(ALL, "SimulateMediation", n, simulate_mediation, |_k| {
        pb::SimulateMediationRequest {
            id: id(),
            voters: vec![
                pb::Voter {
                    kind: Some(pb::voter::Kind::HillClimber(true)),
                };
                2
            ],
            rounds: 10,
            ..Default::default()
        }
    });
    rpc!(ALL, "SimulateNegotiation", n, simulate_negotiation, |_k| {
        pb::SimulateNegotiationRequest {
            id: id(),
            ..Default::default()
        }
    });
    rpc!(&["negotiation:read", US], "TakeSeat", n, take_seat, |_k| {
        tokio_stream::iter(vec![pb::TakeSeatRequest {
            message: Some(pb::take_seat_request::Message::Join(pb::JoinSeat {
                id: id(),
                party: "US".into(),
                ..Default::default()
            })),
        }])
    });
    rpc!(WRITE, "ForkNegotiation", n, fork_negotiation, |_k| {
        pb::ForkNegotiationRequest {
            id: id(),
            ..Default::default()
        }
    });
    rpc!(READ, "WatchNegotiation", n, watch_negotiation, |_k| {
        pb::WatchNegotiationRequest {
            id: id(),
            ..Default::default()
        }
    });
    rpc!(
        &["negotiation:read", "data:read"],
        "EstimateImpact",
        n,
        estimate_impact,
        |_k| pb::EstimateImpactRequest {
            id: id(),
            ..Default::default()
        }
    );
    // Every RPC the services' descriptor sets name, so that a new one cannot go unchecked.
    let mut listed: Vec<&str> = calls.iter().map(|(_, name, _)| *name).collect();
    listed.sort_unstable();
    let mut served: Vec<String> = [
        "tradepact.data.v1.TradeDataService",
        "tradepact.negotiation.v1.NegotiationService",
    ]
    .iter()
    .flat_map(|service| tradepact_proto::method_names(service))
    .collect();
    served.sort_unstable();
    assert_eq!(listed, served, "every RPC of both services");

    // RFC 6750 allows the scheme in any case.
    let mut lower = Request::new(data_pb::ListSeriesRequest::default());
    lower
        .metadata_mut()
        .insert("authorization", "bearer only:data:read".parse().unwrap());
    assert_eq!(code(d.clone().list_series(lower).await), Code::Ok);
    // A token acting for KOR cannot act for US, in any of a party's RPCs.
    for name in ["SetPosition", "SubmitOffer", "RespondToOffer", "BreakOff"] {
        let (_, _, call) = calls.iter().find(|(_, n, _)| *n == name).unwrap();
        assert_eq!(
            call("kor".into()).await,
            Code::PermissionDenied,
            "{name} for US by KOR"
        );
    }
    // BreakOff ends the negotiation: last.
    calls.sort_by_key(|(_, name, _)| *name == "BreakOff");
    for (needed, name, call) in &calls {
        for scope in *needed {
            let denied = call(format!("all-but:{scope}")).await;
            assert_eq!(denied, Code::PermissionDenied, "{name} without {scope}");
        }
        let allowed = call(format!("only:{}", needed.join("+"))).await;
        assert!(
            !matches!(allowed, Code::PermissionDenied | Code::Unauthenticated),
            "{name} with {needed:?}: {allowed:?}"
        );
        assert_eq!(
            call("no-such-token".into()).await,
            Code::Unauthenticated,
            "{name} with a bad token"
        );
    }
}

/// The KORUS-like two-issue negotiation the privacy tests use, positions set with `token`
/// (which must act for both parties). Values are chosen so that every utility is a
/// distinctive number, which a test can look for in what a caller got.
pub(crate) async fn create_with_positions(
    n: &mut tradepact_client::negotiation::NegotiationClient,
    token: &str,
) -> String {
    let option = |id: &str| pb::IssueOption {
        id: id.into(),
        label: id.into(),
        trade_effects: vec![],
    };
    let issue = |id: &str| pb::Issue {
        id: id.into(),
        label: id.into(),
        options: vec![option("a"), option("b"), option("c")],
    };
    let id = n
        .create_negotiation(authorized(
            pb::CreateNegotiationRequest {
                title: "privacy".into(),
                agreement: "KORUS".into(),
                parties: vec!["US".into(), "KOR".into()],
                issues: vec![issue("autos"), issue("steel")],
                deadline_rounds: 10,
                ..Default::default()
            },
            DEFAULT_DEADLINE,
            Some(token),
        ))
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;
    for (party, weights, values) in [
        ("US", [0.7131, 0.2869], [0.9173, 0.4411, 0.0]),
        ("KOR", [0.3217, 0.6783], [0.0, 0.5347, 0.9613]),
    ] {
        let values: std::collections::HashMap<String, f64> = ["a", "b", "c"]
            .iter()
            .zip(values)
            .map(|(o, v)| ((*o).to_owned(), v))
            .collect();
        n.set_position(authorized(
            pb::SetPositionRequest {
                negotiation_id: id.clone(),
                party: party.into(),
                position: Some(pb::Position {
                    weights: [
                        ("autos".to_owned(), weights[0]),
                        ("steel".to_owned(), weights[1]),
                    ]
                    .into(),
                    values: [
                        (
                            "autos".to_owned(),
                            pb::OptionValues {
                                values: values.clone(),
                            },
                        ),
                        ("steel".to_owned(), pb::OptionValues { values }),
                    ]
                    .into(),
                    reservation_value: 0.1,
                }),
            },
            DEFAULT_DEADLINE,
            Some(token),
        ))
        .await
        .unwrap();
    }
    id
}

/// The Python package over mutual TLS with bearer tokens: a writer writes and reads back, a
/// reader is refused the write (`PERMISSION_DENIED`), no token is `UNAUTHENTICATED`, no client
/// certificate cannot connect (`UNAVAILABLE`), all as `tradepact.Error`s.
#[test]
fn the_python_package_speaks_tls_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let tokens = tokens_file(dir.path());
    let data_dir = dir.path().join("data");
    let data = Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--tls-cert",
            &pki.path("server.pem"),
            "--tls-key",
            &pki.path("server.key"),
            "--tls-client-ca",
            &pki.path("ca.pem"),
            "--tokens-file",
            &tokens,
        ],
    );
    let target = format!(
        "https://localhost:{}",
        data.addr.rsplit(':').next().unwrap()
    );
    let script = r#"
import sys, tradepact
target, ca, cert, key = sys.argv[1:5]
def client(token, mutual=True):
    identity = dict(cert=cert, key=key) if mutual else {}
    return tradepact.connect_data(target, ca=ca, token=token, timeout=10, **identity)
with client("writer-secret-2") as c:
    assert c.write("USA", "KOR", {"2016": 42.3e9})["inserted"] == 1
    assert list(c.series("USA", "KOR")["value_usd"]) == [42.3e9]
for token, mutual, code in [
    ("reader-secret-1", True, "PERMISSION_DENIED"),
    (None, True, "UNAUTHENTICATED"),
    ("writer-secret-2", False, "UNAVAILABLE"),
]:
    with client(token, mutual) as c:
        try:
            c.write("USA", "KOR", {"2017": 1.0})
        except tradepact.Error as e:
            assert e.code.name == code, (token, mutual, e)
        else:
            raise AssertionError(f"{token} wrote (client certificate: {mutual})")
print("python tls: ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &target, &pki.path("ca.pem")])
        .args([pki.path("client.pem"), pki.path("client.key")])
        .output()
        .expect("python3 on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("python tls: ok"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
