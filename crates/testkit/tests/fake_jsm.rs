//! FakeJsmOps answers like JSM Operations' API: who is on call, by schedule id, to an
//! authenticated account that may read the schedule; and FakeJira tells its cloud id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use testkit::jira::{FakeJira, FakeJiraOptions};
use testkit::jsm::{FakeJsmOps, FakeJsmOptions, JsmAccount, JsmSchedule};

const CLOUD: &str = "cloud-1";

async fn fake() -> FakeJsmOps {
    FakeJsmOps::start(FakeJsmOptions {
        cloud_id: CLOUD.into(),
        accounts: vec![
            JsmAccount::new("acc-bot", "bot@example.com", "tok"),
            JsmAccount::new("acc-unscoped", "unscoped@example.com", "tok2").without_ops_scope(),
        ],
        schedules: vec![
            JsmSchedule::new("s-1", "Primary", &["acc-alice"])
                .with_team("t-1", &["acc-bob", "acc-alice"]),
            JsmSchedule::new("s-2", "Secret", &["acc-carol"]).readable_only_by(&["acc-other"]),
        ],
    })
    .await
    .unwrap()
}

fn client(fake: &FakeJsmOps) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(fake.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

async fn get(fake: &FakeJsmOps, path: &str, login: (&str, &str)) -> (u16, Value, Option<String>) {
    let response = client(fake)
        .get(format!("{}{path}", fake.url()))
        .basic_auth(login.0, Some(login.1))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry_after)
}

const BOT: (&str, &str) = ("bot@example.com", "tok");

#[tokio::test]
async fn flat_on_calls_list_every_account_id_once_and_participants_keep_teams() {
    let fake = fake().await;
    let path = format!("/jsm/ops/api/{CLOUD}/v1/schedules/s-1/on-calls");
    let (status, body, _) = get(&fake, &format!("{path}?flat=true"), BOT).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["onCallUsers"],
        serde_json::json!(["acc-alice", "acc-bob"])
    );
    let (status, body, _) = get(&fake, &format!("{path}?flat=false"), BOT).await;
    assert_eq!(status, 200);
    let participants = body["onCallParticipants"].as_array().unwrap();
    assert_eq!(participants[0]["type"], "user");
    assert_eq!(participants[1]["type"], "team");
    assert_eq!(participants[1]["onCallParticipants"][0]["id"], "acc-bob");
    assert_eq!(fake.on_call_reads("s-1"), 2);
}

#[tokio::test]
async fn refusals_follow_the_api_401_unscoped_or_bad_token_403_unreadable_404_unknown() {
    let fake = fake().await;
    let on_calls = |cloud: &str, id: &str| {
        format!("/jsm/ops/api/{cloud}/v1/schedules/{id}/on-calls?flat=true")
    };
    assert_eq!(
        get(&fake, &on_calls(CLOUD, "s-1"), ("bot@example.com", "bad"))
            .await
            .0,
        401
    );
    assert_eq!(
        get(
            &fake,
            &on_calls(CLOUD, "s-1"),
            ("unscoped@example.com", "tok2")
        )
        .await
        .0,
        401
    );
    assert_eq!(get(&fake, &on_calls(CLOUD, "s-2"), BOT).await.0, 403);
    assert_eq!(get(&fake, &on_calls(CLOUD, "nope"), BOT).await.0, 404);
    let (status, body, _) = get(&fake, &on_calls("other-site", "s-1"), BOT).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], 404);
    let calls = fake.calls();
    assert_eq!(calls[0].caller, None);
    assert_eq!(calls[2].caller.as_deref(), Some("acc-bot"));
}

#[tokio::test]
async fn injected_faults_answer_first_with_their_retry_after_then_stop() {
    let fake = fake().await;
    fake.fail_next(1, 429, Some(3));
    fake.fail_next(1, 503, None);
    let path = format!("/jsm/ops/api/{CLOUD}/v1/schedules/s-1/on-calls?flat=true");
    assert_eq!(
        get(&fake, &path, BOT).await,
        (
            429,
            serde_json::json!({"code": 429, "message": "injected"}),
            Some("3".into())
        )
    );
    assert_eq!(get(&fake, &path, BOT).await.0, 503);
    fake.set_on_call("s-1", &["acc-dave"]);
    let (status, body, _) = get(&fake, &path, BOT).await;
    assert_eq!(
        (status, body["onCallUsers"].clone()),
        (200, serde_json::json!(["acc-dave"]))
    );
}

#[tokio::test]
async fn fake_jira_cloud_tells_its_cloud_id_without_authentication() {
    let jira = FakeJira::start(FakeJiraOptions {
        tls: true,
        cloud_id: "site-42".into(),
        ..FakeJiraOptions::default()
    })
    .await
    .unwrap();
    let ca = reqwest::Certificate::from_pem(jira.ca_pem().unwrap().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let body: Value = client
        .get(format!("{}/_edge/tenant_info", jira.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["cloudId"], "site-42");
}
