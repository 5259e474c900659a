//! OpenTelemetry traces: both services with `--otlp-endpoint` export their spans over OTLP/gRPC
//! to a receiver in this test (opentelemetry-proto's collector service on a real socket). One
//! EstimateImpact called with a W3C `traceparent` gives one trace: the negotiation service's
//! server span is the caller's child, its calls to the data service are client spans under it,
//! and the data service's server spans are their children.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{data_client, key, negotiation_client, write_request, Process};

/// A span as received: the exporting service, its name, kind, ids and gRPC status.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent: String,
    grpc_status: Option<i64>,
}

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                let grpc_status = span
                    .attributes
                    .iter()
                    .find(|a| a.key == "rpc.grpc.status_code")
                    .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                        Value::IntValue(i) => Some(*i),
                        _ => None,
                    });
                spans.push(Received {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    grpc_status,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// OTLP span kinds.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_and_the_calls_it_makes_are_one_trace() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let export = [("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let data = Process::start_with_env(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--otlp-endpoint",
            &otlp,
        ],
        &export,
    );
    let mut d = data_client(&data).await;
    for (partner, value) in [("KOR", 1000.0), ("WLD", 5000.0)] {
        let hs87 = key(
            "USA",
            partner,
            data_pb::Flow::Import,
            data_pb::TradeKind::Goods,
            "HS:87",
            data_pb::Frequency::Annual,
        );
        d.write_points(write_request(hs87, &[("2016", value)]))
            .await
            .unwrap();
    }
    let negotiation = Process::start_with_env(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("neg").to_str().unwrap(),
            "--data-service",
            &data.url(),
            "--otlp-endpoint",
            &otlp,
        ],
        &export,
    );
    let mut c = negotiation_client(&negotiation).await;
    let id = crate::impact::create_autos(&mut c).await;

    // The caller's trace and span.
    let (trace, caller) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let mut request = tonic::Request::new(crate::impact::cut_request(
        &id,
        Some(pb::Baseline {
            period: Some(pb::baseline::Period::Year("2016".into())),
        }),
    ));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{caller}-01").parse().unwrap(),
    );
    let impact = c.estimate_impact(request).await.unwrap().into_inner();
    assert_eq!(impact.effects.len(), 1);

    // Spans arrive in batches (every 100 ms here): wait for the four of this trace.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<Received> = receiver
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace)
            .cloned()
            .collect();
        if spans.len() >= 5 || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let described = format!("{spans:#?}");

    let estimate: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "tradepact.negotiation.v1.NegotiationService/EstimateImpact")
        .collect();
    assert_eq!(estimate.len(), 1, "{described}");
    let estimate = estimate[0];
    assert_eq!(estimate.service, "tradepact-negotiation");
    assert_eq!(estimate.kind, SERVER);
    assert_eq!(estimate.parent, caller, "the caller's span is the parent");
    assert_eq!(estimate.grpc_status, Some(0));

    // Two baselines (bilateral and world), each a client span under EstimateImpact and a
    // server span of the data service under that.
    let calls: Vec<_> = spans.iter().filter(|s| s.kind == CLIENT).collect();
    assert_eq!(calls.len(), 2, "{described}");
    for call in calls {
        assert_eq!(
            call.name, "tradepact.data.v1.TradeDataService/GetSeries",
            "{described}"
        );
        assert_eq!(call.service, "tradepact-negotiation");
        assert_eq!(call.parent, estimate.span_id, "{described}");
        let served: Vec<_> = spans.iter().filter(|s| s.parent == call.span_id).collect();
        assert_eq!(served.len(), 1, "{described}");
        assert_eq!(served[0].service, "tradepact-data");
        assert_eq!(served[0].kind, SERVER);
        assert_eq!(served[0].name, call.name);
        assert_eq!(served[0].grpc_status, Some(0));
    }
    // Span ids are OpenTelemetry's (random, 64 bits, never the caller's).
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| &s.span_id).collect();
    assert_eq!(ids.len(), spans.len(), "{described}");
    assert!(!ids.contains(&caller.to_owned()));
}
