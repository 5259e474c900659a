//! The Python package (`clients/python`, installed by the test command): the client tests write
//! and read back a series through it, and negotiate through it, and the example of `docs/` asks the KORUS questions of
//! `tradepact up` (the sample and the KORUS scenario loaded) and checks the figures.

use tradepact_tests::{binary, start_data, start_negotiation, start_up, workspace, READY_TIMEOUT};

fn python(args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .args(args)
        .output()
        .expect("python3 on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python failed (pip install -r tests/python/requirements.txt ./clients/python?)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout.into_owned()
}

#[test]
fn python_grpcio_client_writes_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let script = workspace().join("tests/python/data_client.py");
    let stdout = python(&[script.to_str().unwrap(), &server.addr]);
    assert!(stdout.contains("python client: ok"), "{stdout}");
}

#[test]
fn python_negotiation_calls_create_offer_agree_analyse_and_simulate() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let script = workspace().join("tests/python/negotiation_client.py");
    let stdout = python(&[script.to_str().unwrap(), &server.addr]);
    assert!(stdout.contains("python negotiation client: ok"), "{stdout}");
}

#[test]
fn the_python_example_asks_the_korus_questions() {
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("ready:", READY_TIMEOUT);
    let data = up.addr_of("tradepact.data.v1.TradeDataService");
    let negotiation = up.addr_of("tradepact.negotiation.v1.NegotiationService");
    let loaded = std::process::Command::new(binary("tradepact"))
        .args(["scenario", "load", "korus-2018", "--negotiation-service"])
        .arg(format!("http://{negotiation}"))
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let script = workspace().join("docs/python_example.py");
    let stdout = python(&[script.to_str().unwrap(), &data, &negotiation]);
    assert!(stdout.contains("python example: ok"), "{stdout}");
    assert!(stdout.contains("ustr-trade-facts-2016"), "{stdout}");
}
