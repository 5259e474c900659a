//! The README's examples, run as written: `tradepact up` on ephemeral ports (the examples'
//! 127.0.0.1:50051 and :50052 replaced by them), then every `tradepact` and `grpcurl` command of
//! its "Try it" sections in order. Watches run for 1 s (`-max-time`) and must print what they resume.

use std::process::Command;
use std::time::Duration;

use tradepact_tests::{binary, start_up, workspace};

/// The commands of the shell blocks in the README's sections whose title says "grpcurl", with
/// `\` continuations joined and comments dropped.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut section = "";
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, heading) if heading.starts_with("## ") => section = heading,
            (None, "```sh") => current = Some(Vec::new()),
            (Some(lines), "```") => {
                if section.contains("grpcurl") {
                    blocks.push(std::mem::take(lines));
                }
                current = None;
            }
            (Some(lines), l) => lines.push(l.to_owned()),
            (None, _) => {}
        }
    }
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in blocks.into_iter().flatten() {
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(&line);
                commands.push(std::mem::take(&mut pending));
            }
        }
    }
    commands
}

#[test]
fn every_readme_example_runs_against_tradepact_up() {
    let commands = readme_commands();
    assert!(
        commands
            .iter()
            .filter(|c| c.starts_with("grpcurl "))
            .count()
            >= 15,
        "{commands:#?}"
    );
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("ready:", Duration::from_secs(30));
    let data = up.addr_of("tradepact.data.v1.TradeDataService");
    let negotiation = up.addr_of("tradepact.negotiation.v1.NegotiationService");
    let tools = binary("tradepact");
    let tools_dir = tools.parent().unwrap();
    let path = format!(
        "{}:{}",
        tools_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    for command in commands {
        // Without a comment, on the ephemeral ports; a watch stops after 1 s.
        let line = command.split(" # ").next().unwrap().trim();
        let line = line
            .replace("127.0.0.1:50051", &data)
            .replace("127.0.0.1:50052", &negotiation);
        let watch = line.contains("/Watch");
        let line = match watch {
            true => line.replacen("grpcurl ", "grpcurl -max-time 1 ", 1),
            false => line,
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(workspace())
            .env("PATH", &path)
            .env(
                "TRADEPACT_NEGOTIATION_SERVICE_URL",
                format!("http://{negotiation}"),
            )
            .env("TRADEPACT_DATA_SERVICE_URL", format!("http://{data}"))
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let context = format!("{line}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        if watch {
            assert!(stderr.contains("DeadlineExceeded"), "{context}");
            if line.contains("from_sequence") || line.contains("from_event") {
                assert!(
                    stdout.contains("\"sequence\"") || stdout.contains("\"eventNumber\""),
                    "{context}"
                );
            }
            continue;
        }
        assert!(out.status.success(), "{context}");
        assert!(!stdout.trim().is_empty(), "{context}");
        if line.contains("scenario load") {
            assert!(stdout.contains("neg-000001"), "the README's id: {context}");
        }
        if line.contains("/GetTradeBalance") {
            assert!(
                stdout.contains("\"balanceUsd\": -2.76e+10"),
                "goods 2016: {context}"
            );
        }
    }
}
