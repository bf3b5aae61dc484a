//! `teleport-jira demo`: the walk-through ends well, and the board it keeps running drives the
//! plugin. Only in binaries built with the `demo` feature, as the test command builds them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{BINARY, WAIT, eventually, send_signal};

#[tokio::test]
async fn demo_walks_a_request_through_its_life_and_exits_zero() {
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(BINARY)
            .arg("demo")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the demo finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for step in [
        "answers 200",
        "the plugin opened Jira issue PROJ-1 in status Pending",
        "is now Approved, decided by jira:carol@example.com, reason \"approved for the incident\"",
        "moved to Denied",
        "moved to Expired",
        "teleport_jira_issues_created_total 3",
        "the plugin exited: exit status: 0",
        "The demo finished",
    ] {
        assert!(stdout.contains(step), "no {step:?} in:\n{stdout}");
    }
}

#[tokio::test]
async fn demo_keeps_running_with_a_board_that_asks_for_access_and_moves_cards() {
    let mut demo = tokio::process::Command::new(BINARY)
        .args(["demo", "--keep-running"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(demo.stdout.take().unwrap()).lines();
    let board = tokio::time::timeout(WAIT, async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("    the board (create requests, move cards):") {
                return url.trim().to_owned();
            }
        }
        panic!("the demo ended without offering its board");
    })
    .await
    .expect("the demo offers its board");
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{board}/requests"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("roles=auditor&reason=board+%3Ctest%3E")
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    // Three issues came from the walk-through; the board's request gets the fourth.
    let page = |path: String| {
        let http = http.clone();
        async move { http.get(path).send().await.unwrap().text().await.unwrap() }
    };
    assert!(
        eventually(|| async { page(format!("{board}/")).await.contains("PROJ-4") }).await,
        "the new request's card never showed on the board"
    );
    let moved = http
        .post(format!("{board}/browse/PROJ-4/move"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("to=Approved&reason=fine+by+me")
        .send()
        .await
        .unwrap();
    assert!(moved.status().is_success(), "{}", moved.status());
    assert!(
        eventually(|| async { page(format!("{board}/")).await.matches("APPROVED").count() == 2 })
            .await,
        "the request decided on the board was never approved:\n{}",
        page(format!("{board}/")).await
    );
    let issue = page(format!("{board}/browse/PROJ-4")).await;
    assert!(issue.contains("Reason: fine by me"), "{issue}");
    assert!(issue.contains("board &lt;test&gt;"), "{issue}");
    assert!(!issue.contains("<test>"), "user text is escaped: {issue}");

    send_signal(demo.id().unwrap(), "-INT");
    let status = tokio::time::timeout(WAIT, demo.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
