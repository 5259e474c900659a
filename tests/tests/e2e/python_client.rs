//! A Python grpcio client, generated from proto/ at run time, writes and reads back a series.

use tradepact_tests::{start_data, workspace};

#[test]
fn python_grpcio_client_writes_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let script = workspace().join("tests/python/data_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&server.addr)
        .output()
        .expect("python3 on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed (pip install -r tests/python/requirements.txt?)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("python client: ok"), "{stdout}");
}
