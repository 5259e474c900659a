//! The framework's ceiling for the load benchmark: a plain tonic server with one trivial
//! unary RPC (`grpc.health.v1.Health/Check`), no layers, on the same runtime settings as the
//! tradepact servers (tokio multi-thread, default tonic server). Prints `listening on ADDR`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    eprintln!("listening on {addr}");
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await?;
    Ok(())
}
