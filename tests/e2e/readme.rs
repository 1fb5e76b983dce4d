//! The README's curl tour, run as written against a fresh server: the block between
//! `<!-- walk:start -->` and `<!-- walk:end -->` is extracted and executed with bash, `BASE`
//! pointing at the test server. If the README and the server drift apart, this fails.

use crate::harness::{Opts, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let start = readme.find("<!-- walk:start -->").expect("walk start marker");
    let end = readme.find("<!-- walk:end -->").expect("walk end marker");
    let block = &readme[start..end];
    let script: String = block
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh code block between the markers")
        .to_string();

    let server = TestServer::start(Opts::new()).await;
    let base = server.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(&script)
            .env("BASE", base)
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "the tour failed:\n{stdout}\n{stderr}");

    // What each step must print.
    assert!(stdout.contains(r#""sent":true"#), "code sent: {stdout}");
    assert!(stdout.contains(r#""phone":"138****8000""#), "me, masked: {stdout}");
    assert!(stdout.contains("1101**********002X"), "patient added, ID masked: {stdout}");
    assert!(stdout.lines().any(|l| l == "内科"), "the department tree: {stdout}");
    assert_eq!(stdout.lines().filter(|l| *l == "王建国").count(), 2, "found by 建国 and by wjg: {stdout}");
    assert!(stdout.lines().any(|l| l == "204"), "logout: {stdout}");
    assert!(stdout.contains(r#""code":"invalid_token""#), "the token is refused afterwards: {stdout}");
}
