use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "tradepact/data/v1/data_service.proto",
    "tradepact/negotiation/v1/negotiation_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let fds = protox::compile(PROTOS, [&root])?;
    // compile_fds() writes no descriptor set of its own; reflection needs one.
    std::fs::write(
        out_dir.join("tradepact_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
