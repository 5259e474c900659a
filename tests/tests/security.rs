//! TLS, mutual TLS and bearer-token scopes on both services, with certificates made in the
//! test (rcgen) and tokens kept hashed in a file.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::Code;
use tradepact_client::{authorized, TlsFiles, DEFAULT_DEADLINE};
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{key, write_request, Process};

struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, in `dir`;
    /// plus a second, unrelated CA.
    fn new(dir: &Path) -> Pki {
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
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
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&k, &issuer)
                .unwrap();
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

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap()
    }

    fn client_tls(&self, ca: &str, with_cert: bool) -> TlsFiles {
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

fn tradepact_rpc_hash(token: &str) -> String {
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
                            }],
                        },
                    ],
                }],
                deadline_rounds: 3,
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
