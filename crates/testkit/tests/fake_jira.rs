//! Behaviour of `FakeJira` over real sockets: auth, issue lifecycle, Jira's validation and error
//! shapes, search consistency, fault knobs, the rate limit and webhook delivery.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use testkit::jira::{
    Deployment, FakeJira, FakeJiraOptions, JiraUser, Permission, ProjectSpec, RateLimit,
    StatusCategory, StatusSpec, WebhookTarget, sign_webhook_body,
};

const PLUGIN_EMAIL: &str = "plugin@example.com";
const PLUGIN_TOKEN: &str = "xyz";

// ----- helpers -------------------------------------------------------------------------------

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// A reqwest client logged in as one user.
struct Api {
    client: reqwest::Client,
    base: String,
    auth: Auth,
}

#[derive(Clone)]
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl Api {
    fn new(jira: &FakeJira) -> Self {
        Self::with_auth(jira, Auth::Basic(PLUGIN_EMAIL.into(), PLUGIN_TOKEN.into()))
    }

    fn with_auth(jira: &FakeJira, auth: Auth) -> Self {
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = jira.ca_pem() {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).unwrap();
            builder = builder.tls_certs_only(certs);
        }
        Self {
            client: builder.build().unwrap(),
            base: jira.url().to_string(),
            auth,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic(user, pass) => request.basic_auth(user, Some(pass)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    async fn create(&self, summary: &str, labels: &[&str], request_id: &str) -> Answer {
        self.post(
            "/rest/api/2/issue",
            json!({
                "fields": {
                    "issuetype": {"name": "Task"},
                    "project": {"key": "PROJ"},
                    "summary": summary,
                    "description": "desc",
                    "labels": labels,
                },
                "properties": [{"key": "teleportAccessRequestId", "value": request_id}],
            }),
        )
        .await
    }
}

async fn start(options: FakeJiraOptions) -> FakeJira {
    FakeJira::start(options).await.unwrap()
}

async fn start_default() -> FakeJira {
    start(FakeJiraOptions::default()).await
}

fn reviewer() -> JiraUser {
    JiraUser::new("712020:carol", "Carol")
        .with_email("carol@example.com")
        .with_token("carol-token")
}

/// One webhook request as the receiver saw it.
#[derive(Clone)]
struct Hit {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Statuses to answer, in order; 200 once exhausted.
    script: Arc<Mutex<VecDeque<u16>>>,
}

struct Receiver {
    url: String,
    state: ReceiverState,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let state = ReceiverState::default();
        state.script.lock().unwrap().extend(script.iter().copied());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.hits().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.hits()
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.hits.lock().unwrap().push(Hit { headers, body });
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn error_messages(answer: &Answer) -> Vec<String> {
    answer.body["errorMessages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

// ----- auth and identity ---------------------------------------------------------------------

#[tokio::test]
async fn missing_or_wrong_credentials_are_refused_with_401() {
    let jira = start_default().await;
    let wrong = Api::with_auth(&jira, Auth::Basic(PLUGIN_EMAIL.into(), "nope".into()));
    let answer = wrong.get("/rest/api/2/myself").await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body,
        json!("Client must be authenticated to access this resource.")
    );
    assert_eq!(
        header(&answer.headers, "x-seraph-loginreason"),
        Some("AUTHENTICATED_FAILED")
    );

    let anonymous = Api::with_auth(&jira, Auth::None);
    assert_eq!(anonymous.get("/rest/api/2/myself").await.status, 401);
    assert_eq!(anonymous.get("/rest/api/2/issue/PROJ-1").await.status, 401);
    // Cloud's API tokens are Basic passwords; Bearer is for OAuth apps.
    let bearer = Api::with_auth(&jira, Auth::Bearer(PLUGIN_TOKEN.into()));
    assert_eq!(bearer.get("/rest/api/2/myself").await.status, 401);
    // serverInfo is public, but rejected credentials still fail.
    assert_eq!(anonymous.get("/rest/api/2/serverInfo").await.status, 200);
    assert_eq!(wrong.get("/rest/api/2/serverInfo").await.status, 401);
}

#[tokio::test]
async fn myself_returns_the_caller_as_json() {
    let jira = start_default().await;
    let answer = Api::new(&jira).get("/rest/api/2/myself").await;
    assert_eq!(answer.status, 200);
    assert!(
        header(&answer.headers, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(answer.body["emailAddress"], "plugin@example.com");
    assert_eq!(answer.body["accountId"], jira.plugin_user().account_id);
    assert_eq!(answer.body["accountType"], "atlassian");
    assert_eq!(answer.body["active"], true);
}

#[tokio::test]
async fn https_with_base_path_is_trusted_through_the_fakes_own_ca() {
    let jira = start(FakeJiraOptions {
        tls: true,
        base_path: "/jira".into(),
        ..FakeJiraOptions::default()
    })
    .await;
    assert!(
        jira.url().starts_with("https://localhost:"),
        "{}",
        jira.url()
    );
    assert!(jira.url().ends_with("/jira"));
    let api = Api::new(&jira);
    let answer = api.get("/rest/api/2/serverInfo").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["deploymentType"], "Cloud");
    assert_eq!(answer.body["baseUrl"], jira.url());
    // Outside the base path nothing is served.
    let outside = api.client.get(format!(
        "https://localhost:{}/rest/api/2/myself",
        jira.addr().port()
    ));
    assert_eq!(outside.send().await.unwrap().status(), 404);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    jira.write_ca_file(&path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        jira.ca_pem().unwrap()
    );

    // A client that does not trust the CA cannot connect.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("{}/rest/api/2/serverInfo", jira.url()))
            .send()
            .await
            .is_err()
    );
    jira.shutdown().await;
}

#[tokio::test]
async fn project_and_mypermissions_answer_like_cloud() {
    let jira = start_default().await;
    jira.add_user(
        JiraUser::new("712020:dave", "Dave")
            .with_email("dave@example.com")
            .with_token("dave-token")
            .with_permissions([Permission::BrowseProjects, Permission::CreateIssues]),
    );
    let api = Api::new(&jira);
    let project = api.get("/rest/api/2/project/PROJ").await;
    assert_eq!(project.status, 200);
    assert_eq!(project.body["key"], "PROJ");
    assert_eq!(project.body["name"], "The Project");
    assert_eq!(project.body["id"], "10000");
    let types: Vec<&str> = project.body["issueTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Task", "Story", "Bug"]);

    let missing = api.get("/rest/api/2/project/NOPE").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({"errorMessages": ["No project could be found with key 'NOPE'."], "errors": {}})
    );

    let dave = Api::with_auth(
        &jira,
        Auth::Basic("dave@example.com".into(), "dave-token".into()),
    );
    let perms = dave
        .get("/rest/api/2/mypermissions?projectKey=PROJ&permissions=BROWSE_PROJECTS%2CCREATE_ISSUES%2CTRANSITION_ISSUES%2CADD_COMMENTS")
        .await;
    assert_eq!(perms.status, 200);
    let p = &perms.body["permissions"];
    assert_eq!(p["BROWSE_PROJECTS"]["havePermission"], true);
    assert_eq!(p["CREATE_ISSUES"]["havePermission"], true);
    assert_eq!(p["TRANSITION_ISSUES"]["havePermission"], false);
    assert_eq!(p["ADD_COMMENTS"]["havePermission"], false);
    assert_eq!(p["ADD_COMMENTS"]["type"], "PROJECT");
    assert_eq!(p["ADD_COMMENTS"]["key"], "ADD_COMMENTS");

    let without = api.get("/rest/api/2/mypermissions?projectKey=PROJ").await;
    assert_eq!(without.status, 400);
    assert_eq!(
        error_messages(&without),
        ["The 'permissions' query parameter is required."]
    );
}

// ----- issues --------------------------------------------------------------------------------

#[tokio::test]
async fn created_issue_with_property_is_readable_with_properties_param() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    let created = api.create("alice requested editor", &[], "req-1").await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["id"], "10001");
    assert_eq!(created.body["key"], "PROJ-1");
    assert_eq!(
        created.body["self"],
        format!("{}/rest/api/2/issue/10001", jira.url())
    );

    let issue = api
        .get("/rest/api/2/issue/10001?expand=changelog%2Ctransitions&fields=status%2Ccomment&properties=teleportAccessRequestId")
        .await;
    assert_eq!(issue.status, 200);
    let body = &issue.body;
    assert_eq!(body["key"], "PROJ-1");
    assert_eq!(
        body["properties"],
        json!({"teleportAccessRequestId": "req-1"})
    );
    assert_eq!(body["fields"]["status"]["name"], "Pending");
    assert_eq!(body["fields"]["status"]["statusCategory"]["key"], "new");
    assert_eq!(body["fields"]["comment"]["total"], 0);
    assert!(
        body["fields"].get("summary").is_none(),
        "only the requested fields"
    );
    assert_eq!(body["changelog"]["total"], 0);
    let transitions: Vec<(String, String)> = body["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().into(),
                t["to"]["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            ("21".into(), "Approved".into()),
            ("31".into(), "Denied".into()),
            ("41".into(), "Expired".into())
        ]
    );

    // By key too, with every field by default, and the single-property endpoint.
    let by_key = api.get("/rest/api/2/issue/PROJ-1").await;
    assert_eq!(by_key.body["fields"]["summary"], "alice requested editor");
    assert!(by_key.body.get("properties").is_none());
    let property = api
        .get("/rest/api/2/issue/PROJ-1/properties/teleportAccessRequestId")
        .await;
    assert_eq!(
        property.body,
        json!({"key": "teleportAccessRequestId", "value": "req-1"})
    );
    let missing = api.get("/rest/api/2/issue/PROJ-1/properties/other").await;
    assert_eq!(missing.status, 404);

    let snapshot = jira.issue("PROJ-1").unwrap();
    assert_eq!(snapshot.status, "Pending");
    assert_eq!(snapshot.properties["teleportAccessRequestId"], "req-1");
    assert_eq!(
        jira.issues_with_property("teleportAccessRequestId", &json!("req-1"))
            .len(),
        1
    );
    assert_eq!(jira.created_issue_count(), 1);

    let unknown = api.get("/rest/api/2/issue/PROJ-99").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body,
        json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}})
    );
}

#[tokio::test]
async fn summary_of_255_characters_or_more_is_refused() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    let refused = api.create(&"a".repeat(255), &[], "r").await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["errors"]["summary"],
        "Summary can't exceed 255 characters."
    );
    assert_eq!(refused.body["errorMessages"], json!([]));
    // Jira counts UTF-16 units: 127 emoji are 254 units.
    assert_eq!(api.create(&"😀".repeat(127), &[], "r").await.status, 201);
    assert_eq!(api.create(&"😀".repeat(128), &[], "r").await.status, 400);
    assert_eq!(api.create(&"a".repeat(254), &[], "r").await.status, 201);
    assert_eq!(jira.created_issue_count(), 2);
}

/// One element of a bulk create: the body `POST issue` takes.
fn issue_update(summary: &str, request_id: &str) -> Value {
    json!({
        "fields": {
            "issuetype": {"name": "Task"},
            "project": {"key": "PROJ"},
            "summary": summary,
        },
        "properties": [{"key": "teleportAccessRequestId", "value": request_id}],
    })
}

#[tokio::test]
async fn bulk_create_creates_each_valid_element_and_points_at_each_refused_one() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    let answer = api
        .post(
            "/rest/api/2/issue/bulk",
            json!({"issueUpdates": [
                issue_update("first", "req-1"),
                issue_update(&"a".repeat(255), "req-2"),
                issue_update("third", "req-3"),
            ]}),
        )
        .await;
    assert_eq!(answer.status, 201);
    let keys: Vec<&str> = answer.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|issue| issue["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["PROJ-1", "PROJ-2"], "in the order of their elements");
    let errors = answer.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["failedElementNumber"], 1);
    assert_eq!(errors[0]["status"], 400);
    assert_eq!(
        errors[0]["elementErrors"]["errors"]["summary"],
        "Summary can't exceed 255 characters."
    );
    let third = api
        .get("/rest/api/2/issue/PROJ-2?properties=teleportAccessRequestId")
        .await;
    assert_eq!(
        third.body["properties"],
        json!({"teleportAccessRequestId": "req-3"})
    );
    assert_eq!(jira.created_issue_count(), 2);
}

#[tokio::test]
async fn bulk_create_that_creates_nothing_answers_400_with_the_same_body() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    let answer = api
        .post(
            "/rest/api/2/issue/bulk",
            json!({"issueUpdates": [issue_update(&"a".repeat(300), "req-1")]}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["issues"], json!([]));
    assert_eq!(answer.body["errors"][0]["failedElementNumber"], 0);
    let too_many: Vec<Value> = (0..51)
        .map(|i| issue_update("s", &format!("r{i}")))
        .collect();
    let refused = api
        .post("/rest/api/2/issue/bulk", json!({"issueUpdates": too_many}))
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(jira.created_issue_count(), 0);
}

#[tokio::test]
async fn a_jira_without_bulk_create_answers_405_and_creates_nothing() {
    let jira = start_default().await;
    jira.faults().set_bulk_create(false);
    let api = Api::new(&jira);
    let answer = api
        .post(
            "/rest/api/2/issue/bulk",
            json!({"issueUpdates": [issue_update("first", "req-1")]}),
        )
        .await;
    assert_eq!(answer.status, 405);
    assert_eq!(jira.created_issue_count(), 0);
}

#[tokio::test]
async fn create_validation_reports_every_bad_field_with_jiras_messages() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    let answer = api
        .post(
            "/rest/api/2/issue",
            json!({"fields": {
                "project": {"key": "NOPE"},
                "issuetype": {"name": "Epic"},
                "labels": ["has space"],
                "customfield_10050": "x",
            }}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.body,
        json!({"errorMessages": [], "errors": {
            "project": "valid project is required",
            "issuetype": "Specify a valid issue type",
            "summary": "You must specify a summary of the issue.",
            "labels": "The label 'has space' contains spaces which is invalid.",
            "customfield_10050": "Field 'customfield_10050' cannot be set. It is not on the appropriate screen, or unknown.",
        }})
    );
    let not_json = api
        .client
        .post(format!("{}/rest/api/2/issue", jira.url()))
        .basic_auth(PLUGIN_EMAIL, Some(PLUGIN_TOKEN))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(jira.created_issue_count(), 0);
}

/// The exact bodies the Go plugin v10.3.1 sent (golden recording), including the transition
/// body with an empty `to` object.
#[tokio::test]
async fn golden_create_comment_and_transition_bodies_are_accepted() {
    let jira = start(FakeJiraOptions {
        projects: vec![ProjectSpec::new("TAR", "Teleport Access Requests")],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    let create = |summary: &str, request_id: &str| {
        json!({
            "fields": {
                "issuetype": {"name": "Task"},
                "project": {"key": "TAR"},
                "summary": summary,
                "description": format!("User *x* requested an access on *25 Nov 26 07:51 UTC* with the following roles:\n\n* editor\n\n\nRequest ID: *{request_id}*\n"),
            },
            "properties": [{"key": "teleportAccessRequestId", "value": request_id}],
        })
    };
    let empty_to = |id: &str| json!({"transition": {"id": id, "to": {"self": "", "description": "", "iconUrl": "", "name": "", "id": ""}}});
    let bodies = [
        (
            "/rest/api/2/issue",
            create(
                "alice@example.com requested editor, auditor",
                "8bdbda57-6f72-44b5-ae66-f8f7d8578ec3",
            ),
            201,
        ),
        (
            "/rest/api/2/issue/10001/comment",
            json!({"body": "*bob@example.com* reviewed the request at *25 Nov 26 07:51 UTC*.\nResolution: *APPROVED*.\nReason: looks fine."}),
            201,
        ),
        (
            "/rest/api/2/issue",
            create(
                "dave@example.com requested editor",
                "4f3ea060-bf80-4572-aa16-4a475594a8ec",
            ),
            201,
        ),
        (
            "/rest/api/2/issue/10002/comment",
            json!({"body": "Access request has been denied\nReason: not during the freeze"}),
            201,
        ),
        ("/rest/api/2/issue/10002/transitions", empty_to("31"), 204),
        (
            "/rest/api/2/issue",
            create(
                "erin@example.com requested auditor",
                "7d24e1d8-eda0-48f0-9b4d-b751f1e134ce",
            ),
            201,
        ),
        (
            "/rest/api/2/issue/10003/comment",
            json!({"body": "Access request has been expired\n"}),
            201,
        ),
        ("/rest/api/2/issue/10003/transitions", empty_to("41"), 204),
    ];
    for (path, body, status) in &bodies {
        let answer = api.post(path, body.clone()).await;
        assert_eq!(answer.status, *status, "{path}: {}", answer.body);
    }
    assert_eq!(jira.issue("TAR-1").unwrap().status, "Pending");
    assert_eq!(jira.issue("TAR-2").unwrap().status, "Denied");
    assert_eq!(jira.issue("TAR-3").unwrap().status, "Expired");
    assert_eq!(
        jira.issue("TAR-3").unwrap().comment_bodies(),
        ["Access request has been expired\n"]
    );

    let log = jira.call_log();
    assert_eq!(log.len(), bodies.len());
    for (call, (path, body, status)) in log.iter().zip(&bodies) {
        assert_eq!(call.method, "POST");
        assert_eq!(&call.path, path);
        assert_eq!(&call.body, body);
        assert_eq!(call.status, *status);
        assert!(call.query.is_empty());
        assert_eq!(
            call.caller.as_deref(),
            Some(jira.plugin_user().account_id.as_str())
        );
    }
}

#[tokio::test]
async fn transitions_by_id_record_the_author_newest_first() {
    let jira = start_default().await;
    jira.add_user(
        JiraUser::new("712020:eve", "Eve")
            .with_hidden_email("eve@example.com")
            .with_token("eve-token"),
    );
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let approve = api
        .post(
            "/rest/api/2/issue/10001/transitions",
            json!({"transition": {"id": "21"}}),
        )
        .await;
    assert_eq!(approve.status, 204);
    jira.transition_as("PROJ-1", "Denied", "712020:eve")
        .unwrap();

    let issue = api.get("/rest/api/2/issue/10001?expand=changelog").await;
    let histories = issue.body["changelog"]["histories"].as_array().unwrap();
    assert_eq!(histories.len(), 2);
    let newest = &histories[0];
    assert_eq!(newest["author"]["accountId"], "712020:eve");
    assert_eq!(newest["author"]["displayName"], "Eve");
    assert!(
        newest["author"].get("emailAddress").is_none(),
        "hidden emails are absent"
    );
    assert_eq!(
        newest["items"][0],
        json!({"field": "status", "fieldtype": "jira", "fieldId": "status",
               "from": "10001", "fromString": "Approved", "to": "10002", "toString": "Denied"})
    );
    let created = newest["created"].as_str().unwrap();
    assert_eq!(
        created.len(),
        "2026-11-25T07:51:17.069+0000".len(),
        "{created}"
    );
    assert!(created.ends_with("+0000"));
    assert_eq!(histories[1]["author"]["emailAddress"], "plugin@example.com");
    assert_eq!(histories[1]["items"][0]["toString"], "Approved");
    assert_eq!(issue.body["fields"]["status"]["name"], "Denied");

    let snapshot = jira.issue("PROJ-1").unwrap();
    assert_eq!(snapshot.changelog[0].author_account_id, "712020:eve");
}

fn history_ids(histories: &Value) -> Vec<u64> {
    histories
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn embedded_changelog_is_the_newest_100_newest_first() {
    let jira = start_default().await;
    jira.add_user(reviewer());
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    jira.transition_as("PROJ-1", "Approved", "712020:carol")
        .unwrap();
    jira.edit_fields_n_times("PROJ-1", "712020:carol", 120)
        .unwrap();

    let issue = api.get("/rest/api/2/issue/PROJ-1?expand=changelog").await;
    let changelog = &issue.body["changelog"];
    assert_eq!(
        (
            &changelog["startAt"],
            &changelog["maxResults"],
            &changelog["total"]
        ),
        (&json!(0), &json!(100), &json!(121))
    );
    let ids = history_ids(&changelog["histories"]);
    assert_eq!(ids.len(), 100);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let newest_item = &changelog["histories"][0]["items"][0];
    assert_eq!(
        (&newest_item["field"], &newest_item["fieldtype"]),
        (&json!("Rank"), &json!("custom"))
    );
    let status_shown = changelog["histories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["items"][0]["field"] == "status");
    assert!(
        !status_shown,
        "the status change is out of the embedded page"
    );
    assert_eq!(jira.issue("PROJ-1").unwrap().status, "Approved");
}

#[tokio::test]
async fn paged_changelog_runs_oldest_first_in_pages_of_at_most_100() {
    let jira = start_default().await;
    jira.add_user(reviewer());
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    jira.transition_as("PROJ-1", "Approved", "712020:carol")
        .unwrap();
    jira.edit_fields_n_times("PROJ-1", "712020:carol", 120)
        .unwrap();

    let first = api
        .get("/rest/api/2/issue/PROJ-1/changelog?maxResults=50")
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(
        (
            &first.body["startAt"],
            &first.body["maxResults"],
            &first.body["total"],
            &first.body["isLast"]
        ),
        (&json!(0), &json!(50), &json!(121), &json!(false))
    );
    let oldest = &first.body["values"][0];
    assert_eq!(oldest["author"]["accountId"], "712020:carol");
    assert_eq!(oldest["items"][0]["field"], "status");
    assert_eq!(oldest["items"][0]["toString"], "Approved");
    let next = first.body["nextPage"].as_str().unwrap();
    assert!(next.ends_with("/rest/api/2/issue/PROJ-1/changelog?maxResults=50&startAt=50"));

    let mut ids = Vec::new();
    let mut start = 0;
    loop {
        let page = api
            .get(&format!(
                "/rest/api/2/issue/PROJ-1/changelog?startAt={start}&maxResults=500"
            ))
            .await;
        assert_eq!(page.body["maxResults"], 100, "capped at 100");
        ids.extend(history_ids(&page.body["values"]));
        if page.body["isLast"] == true {
            assert!(page.body.get("nextPage").is_none());
            break;
        }
        start += 100;
    }
    assert_eq!(ids.len(), 121);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let default = api.get("/rest/api/3/issue/10001/changelog").await;
    assert_eq!(default.body["values"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn paged_changelog_is_cloud_only() {
    let jira = start(FakeJiraOptions {
        deployment: Deployment::DataCenter,
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let answer = api.get("/rest/api/2/issue/PROJ-1/changelog").await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn v3_issue_has_documents_for_rich_text() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    api.post(
        "/rest/api/2/issue/PROJ-1/comment",
        json!({"body": "one\ntwo"}),
    )
    .await;
    let issue = api.get("/rest/api/3/issue/PROJ-1").await;
    assert_eq!(issue.status, 200);
    assert_eq!(
        issue.body["fields"]["description"],
        json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "desc"}]}
        ]})
    );
    let body = &issue.body["fields"]["comment"]["comments"][0]["body"];
    assert_eq!(body["content"][1]["content"][0]["text"], "two");
    let edit = api
        .put("/rest/api/3/issue/PROJ-1", json!({"fields": {}}))
        .await;
    assert_eq!(edit.status, 404, "only reads of issues are modelled on v3");
}

#[tokio::test]
async fn site_lists_fields_statuses_and_issue_types() {
    let jira = start(FakeJiraOptions {
        custom_fields: vec!["customfield_10050".into()],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    let fields = api.get("/rest/api/2/field").await;
    assert_eq!(fields.status, 200);
    let by_id = |id: &str| {
        fields
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id("summary")["clauseNames"], json!(["summary"]));
    assert_eq!(by_id("summary")["custom"], false);
    let custom = by_id("customfield_10050");
    assert_eq!(custom["clauseNames"], json!(["cf[10050]"]));
    assert_eq!(custom["schema"]["customId"], 10050);

    let names = |answer: &Answer| -> Vec<String> {
        answer
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let statuses = api.get("/rest/api/2/status").await;
    assert_eq!(
        names(&statuses),
        ["Pending", "Approved", "Denied", "Expired"]
    );
    assert_eq!(statuses.body[1]["statusCategory"]["key"], "done");
    let types = api.get("/rest/api/3/issuetype").await;
    assert_eq!(names(&types), ["Task", "Story", "Bug"]);
    let anonymous = Api::with_auth(&jira, Auth::None);
    assert_eq!(anonymous.get("/rest/api/2/field").await.status, 401);
}

#[tokio::test]
async fn deleted_issue_is_gone_and_needs_the_permission() {
    let jira = start_default().await;
    jira.add_user(reviewer().with_permissions([Permission::BrowseProjects]));
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let carol = Api::with_auth(
        &jira,
        Auth::Basic("carol@example.com".into(), "carol-token".into()),
    );
    let refused = carol.delete("/rest/api/2/issue/PROJ-1").await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        error_messages(&refused),
        ["You do not have permission to delete issues in this project."]
    );
    let deleted = api
        .delete("/rest/api/2/issue/PROJ-1?deleteSubtasks=false")
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(api.get("/rest/api/2/issue/PROJ-1").await.status, 404);
    assert_eq!(api.delete("/rest/api/2/issue/PROJ-1").await.status, 404);
    assert!(jira.issues().is_empty());
}

#[tokio::test]
async fn unavailable_transition_ids_are_refused_with_jiras_message() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let bogus = api
        .post(
            "/rest/api/2/issue/10001/transitions",
            json!({"transition": {"id": "99"}}),
        )
        .await;
    assert_eq!(bogus.status, 400);
    assert_eq!(
        bogus.body,
        json!({"errorMessages": ["Transition id '99' is not valid for this issue."], "errors": {}})
    );
    // No transition leads from a status to itself.
    let to_self = api
        .post(
            "/rest/api/2/issue/10001/transitions",
            json!({"transition": {"id": "11"}}),
        )
        .await;
    assert_eq!(to_self.status, 400);
    let listed = api.get("/rest/api/2/issue/10001/transitions").await;
    let ids: Vec<&str> = listed.body["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["21", "31", "41"]);
    assert_eq!(jira.issue("PROJ-1").unwrap().status, "Pending");
}

#[tokio::test]
async fn renamed_workflow_keeps_jira_numbered_transitions() {
    let jira = start(FakeJiraOptions {
        statuses: vec![
            StatusSpec::new("À faire", StatusCategory::ToDo),
            StatusSpec::new("Approuvé", StatusCategory::Done).with_transition_name("Approuver"),
            StatusSpec::new("Refusé", StatusCategory::Done),
        ],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let listed = api.get("/rest/api/2/issue/PROJ-1/transitions").await;
    assert_eq!(listed.body["transitions"][0]["name"], "Approuver");
    assert_eq!(listed.body["transitions"][0]["to"]["name"], "Approuvé");
    assert_eq!(
        listed.body["transitions"][0]["to"]["statusCategory"]["key"],
        "done"
    );
    assert_eq!(listed.body["transitions"][1]["id"], "31");
}

#[tokio::test]
async fn comments_paginate_with_small_pages_newest_first() {
    let jira = start(FakeJiraOptions {
        comment_page_size: 2,
        ..FakeJiraOptions::default()
    })
    .await;
    jira.add_user(reviewer());
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    for n in 1..=5 {
        if n % 2 == 0 {
            jira.comment_as("PROJ-1", "712020:carol", &format!("comment {n}"))
                .unwrap();
        } else {
            let answer = api
                .post(
                    "/rest/api/2/issue/10001/comment",
                    json!({"body": format!("comment {n}")}),
                )
                .await;
            assert_eq!(answer.status, 201);
            assert_eq!(
                answer.body["author"]["accountId"],
                jira.plugin_user().account_id
            );
        }
    }
    let mut seen = Vec::new();
    let mut start_at = 0;
    loop {
        let page = api
            .get(&format!(
                "/rest/api/2/issue/10001/comment?orderBy=-created&startAt={start_at}"
            ))
            .await;
        assert_eq!(page.status, 200);
        assert_eq!(page.body["maxResults"], 2);
        assert_eq!(page.body["total"], 5);
        assert_eq!(page.body["startAt"], start_at);
        let comments = page.body["comments"].as_array().unwrap();
        seen.extend(
            comments
                .iter()
                .map(|c| c["body"].as_str().unwrap().to_string()),
        );
        if comments.len() < 2 {
            break;
        }
        start_at += comments.len();
    }
    assert_eq!(
        seen,
        [
            "comment 5",
            "comment 4",
            "comment 3",
            "comment 2",
            "comment 1"
        ]
    );
    let oldest = api
        .get("/rest/api/2/issue/10001/comment?maxResults=1")
        .await;
    assert_eq!(oldest.body["comments"][0]["body"], "comment 1");
    assert_eq!(
        oldest.body["comments"][0]["author"]["emailAddress"],
        "plugin@example.com"
    );

    let empty = api
        .post("/rest/api/2/issue/10001/comment", json!({"body": "  "}))
        .await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.body["errors"]["comment"],
        "Comment body can not be empty!"
    );
}

#[tokio::test]
async fn labels_edits_are_recorded_in_the_changelog() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    api.create("s", &["b"], "r").await;
    let put = api
        .put(
            "/rest/api/2/issue/PROJ-1",
            json!({"update": {"labels": [{"add": "a"}]}}),
        )
        .await;
    assert_eq!(put.status, 204);
    assert_eq!(jira.issue("PROJ-1").unwrap().labels, ["a", "b"]);
    let put = api
        .put(
            "/rest/api/2/issue/PROJ-1",
            json!({"fields": {"labels": ["c"]}}),
        )
        .await;
    assert_eq!(put.status, 204);
    let issue = api
        .get("/rest/api/2/issue/PROJ-1?expand=changelog&fields=labels")
        .await;
    assert_eq!(issue.body["fields"]["labels"], json!(["c"]));
    assert_eq!(
        issue.body["changelog"]["histories"][0]["items"][0]["field"],
        "labels"
    );
    assert_eq!(
        issue.body["changelog"]["histories"][0]["items"][0]["toString"],
        "c"
    );
    let bad = api
        .put(
            "/rest/api/2/issue/PROJ-1",
            json!({"fields": {"labels": ["x y"]}}),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn missing_permissions_get_jiras_answers() {
    let jira = start_default().await;
    jira.add_user(
        JiraUser::new("712020:mallory", "Mallory")
            .with_email("mallory@example.com")
            .with_token("m")
            .with_permissions([Permission::BrowseProjects]),
    );
    jira.add_user(
        JiraUser::new("712020:outsider", "Outsider")
            .with_email("outsider@example.com")
            .with_token("o")
            .with_permissions([]),
    );
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let mallory = Api::with_auth(&jira, Auth::Basic("mallory@example.com".into(), "m".into()));
    let comment = mallory
        .post("/rest/api/2/issue/10001/comment", json!({"body": "hi"}))
        .await;
    assert_eq!(comment.status, 403);
    let transition = mallory
        .post(
            "/rest/api/2/issue/10001/transitions",
            json!({"transition": {"id": "21"}}),
        )
        .await;
    assert_eq!(transition.status, 400);
    let listed = mallory
        .get("/rest/api/2/issue/10001?expand=transitions")
        .await;
    assert_eq!(listed.body["transitions"], json!([]));
    let create = mallory.create("s", &[], "r").await;
    assert_eq!(create.status, 400);
    assert_eq!(
        create.body["errors"]["project"],
        "You do not have permission to create issues in this project."
    );

    let outsider = Api::with_auth(
        &jira,
        Auth::Basic("outsider@example.com".into(), "o".into()),
    );
    assert_eq!(outsider.get("/rest/api/2/issue/10001").await.status, 404);
    assert_eq!(outsider.get("/rest/api/2/project/PROJ").await.status, 404);
}

// ----- search --------------------------------------------------------------------------------

#[tokio::test]
async fn classic_search_is_gone_on_cloud() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    for path in [
        "/rest/api/2/search?jql=project%3DPROJ",
        "/rest/api/3/search?jql=project%3DPROJ",
    ] {
        let answer = api.get(path).await;
        assert_eq!(answer.status, 410, "{path}");
        assert!(error_messages(&answer)[0].contains("/rest/api/3/search/jql"));
    }
    assert_eq!(
        api.post("/rest/api/2/search", json!({"jql": "project = PROJ"}))
            .await
            .status,
        410
    );
}

#[tokio::test]
async fn jql_search_sees_a_label_only_after_the_lag_unless_reconciled() {
    // Long enough that the first searches surely run inside it on a loaded machine.
    let lag = Duration::from_millis(1000);
    let jira = start(FakeJiraOptions {
        search_lag: lag,
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    api.create("s", &["teleport-req-abc"], "abc").await;
    let jql = r#"project = PROJ AND labels = "teleport-req-abc""#;
    let path = format!("/rest/api/2/search/jql?jql={}", urlencode(jql));

    let early = api.get(&path).await;
    assert_eq!(early.status, 200);
    assert_eq!(early.body, json!({"issues": [], "isLast": true}));

    let reconciled = api
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": jql, "reconcileIssues": [10001]}),
        )
        .await;
    assert_eq!(reconciled.body["issues"], json!([{"id": "10001"}]));

    tokio::time::sleep(lag + Duration::from_millis(100)).await;
    let late = api.get(&path).await;
    assert_eq!(late.body["issues"], json!([{"id": "10001"}]));

    // A later label change is again invisible until the lag has passed; the old state shows.
    jira.set_labels_as("PROJ-1", &jira.plugin_user().account_id, &["other"])
        .unwrap();
    assert_eq!(
        api.get(&path).await.body["issues"],
        json!([{"id": "10001"}])
    );
    jira.faults().set_search_lag(Duration::ZERO);
    assert_eq!(api.get(&path).await.body["issues"], json!([]));
}

#[tokio::test]
async fn unsupported_or_unsearchable_jql_is_refused_with_400() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    let search = |jql: &'static str| {
        let api = &api;
        async move {
            api.post("/rest/api/2/search/jql", json!({"jql": jql}))
                .await
        }
    };
    let property = search(r#"issue.property[teleportAccessRequestId] = "abc""#).await;
    assert_eq!(property.status, 400);
    assert!(
        error_messages(&property)[0].contains("does not exist"),
        "{:?}",
        property.body
    );
    let unbounded = search("ORDER BY created DESC").await;
    assert_eq!(unbounded.status, 400);
    assert!(error_messages(&unbounded)[0].starts_with("Unbounded JQL queries are not allowed"));
    assert_eq!(search("").await.status, 400);
    assert_eq!(search("project = PROJ OR labels = x").await.status, 400);
    assert_eq!(search("assignee = currentUser()").await.status, 400);
    let bad_project = search("project = NOPE").await;
    assert_eq!(
        error_messages(&bad_project),
        ["The value 'NOPE' does not exist for the field 'project'."]
    );
    let bad_date = search("updated >= yesterday").await;
    assert_eq!(bad_date.status, 400);
    assert_eq!(search(r#"project = "PROJ" AND status in ("Pending", Approved) AND updated >= -5m AND created >= "-1w 2d" ORDER BY created ASC"#).await.status, 200);
}

#[tokio::test]
async fn jql_search_paginates_with_next_page_token() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    for n in 1..=5 {
        api.create(&format!("issue {n}"), &["batch"], "r").await;
    }
    jira.transition_as_without_webhook("PROJ-5", "Approved", &jira.plugin_user().account_id)
        .unwrap();
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"jql": "labels = batch AND key > PROJ-1 ORDER BY created ASC", "maxResults": 2, "fields": ["summary", "status"]});
        if let Some(t) = &token {
            body["nextPageToken"] = json!(t);
        }
        let page = api.post("/rest/api/2/search/jql", body).await;
        assert_eq!(page.status, 200);
        assert!(page.body.get("total").is_none());
        pages += 1;
        for issue in page.body["issues"].as_array().unwrap() {
            assert!(issue["fields"]["summary"].is_string());
            ids.push(issue["key"].as_str().unwrap().to_string());
        }
        match page.body.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => {
                assert_eq!(page.body["isLast"], false);
                token = Some(t.to_string());
            }
            None => {
                assert_eq!(page.body["isLast"], true);
                break;
            }
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(ids, ["PROJ-2", "PROJ-3", "PROJ-4", "PROJ-5"]);
    let approved = api
        .get(&format!(
            "/rest/api/2/search/jql?jql={}",
            urlencode("project = PROJ AND status = Approved")
        ))
        .await;
    assert_eq!(approved.body["issues"], json!([{"id": "10005"}]));
    let forged = api
        .post(
            "/rest/api/2/search/jql",
            json!({"jql": "project = PROJ", "nextPageToken": "garbage"}),
        )
        .await;
    assert_eq!(forged.status, 400);
}

#[tokio::test]
async fn data_center_takes_bearer_pats_and_keeps_classic_search() {
    let jira = start(FakeJiraOptions {
        deployment: Deployment::DataCenter,
        plugin_user: JiraUser::new("dc-plugin", "Plugin")
            .with_email("plugin@example.com")
            .with_name("plugin")
            .with_token("pat-123"),
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::with_auth(&jira, Auth::Bearer("pat-123".into()));
    let me = api.get("/rest/api/2/myself").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["name"], "plugin");
    assert!(me.body["key"].as_str().unwrap().starts_with("JIRAUSER"));
    assert!(me.body.get("accountId").is_none());
    assert_eq!(
        api.get("/rest/api/2/serverInfo").await.body["deploymentType"],
        "DataCenter"
    );
    assert_eq!(
        Api::with_auth(&jira, Auth::Bearer("wrong".into()))
            .get("/rest/api/2/myself")
            .await
            .status,
        401
    );

    api.create("s", &[], "r").await;
    api.create("t", &[], "r").await;
    let classic = api
        .get("/rest/api/2/search?jql=project%20%3D%20PROJ&maxResults=1")
        .await;
    assert_eq!(classic.status, 200);
    assert_eq!(classic.body["total"], 2);
    assert_eq!(classic.body["maxResults"], 1);
    assert_eq!(classic.body["issues"].as_array().unwrap().len(), 1);
    assert_eq!(
        classic.body["issues"][0]["fields"]["status"]["name"],
        "Pending"
    );
    assert_eq!(
        api.get("/rest/api/2/search/jql?jql=project%3DPROJ")
            .await
            .status,
        404
    );
    // Data Center's mypermissions still lists everything when `permissions` is missing.
    let perms = api.get("/rest/api/2/mypermissions?projectKey=PROJ").await;
    assert_eq!(
        perms.body["permissions"]["EDIT_ISSUES"]["havePermission"],
        true
    );
}

// ----- fault knobs ---------------------------------------------------------------------------

#[tokio::test]
async fn rate_limited_calls_answer_429_with_retry_after() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    jira.faults().rate_limit_next(1, 7);
    jira.faults().rate_limit_next_without_retry_after(1);
    let limited = api.get("/rest/api/2/myself").await;
    assert_eq!(limited.status, 429);
    assert_eq!(header(&limited.headers, "retry-after"), Some("7"));
    assert_eq!(header(&limited.headers, "x-ratelimit-remaining"), Some("0"));
    assert!(header(&limited.headers, "x-ratelimit-reset").is_some());
    assert_eq!(
        header(&limited.headers, "ratelimit-reason"),
        Some("jira-burst-based")
    );
    let bare = api.get("/rest/api/2/myself").await;
    assert_eq!(bare.status, 429);
    assert_eq!(header(&bare.headers, "retry-after"), None);
    assert_eq!(api.get("/rest/api/2/myself").await.status, 200);
}

// ----- rate limit ----------------------------------------------------------------------------

fn header_number(answer: &Answer, name: &str) -> u64 {
    header(&answer.headers, name).unwrap().parse().unwrap()
}

#[tokio::test]
async fn rate_limit_answers_429_past_the_burst_with_jiras_headers() {
    let jira = start(FakeJiraOptions {
        rate_limit: Some(RateLimit::new(0.5, 3)),
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let answer = api.get("/rest/api/2/myself").await;
        assert_eq!(answer.status, 200);
        assert_eq!(header_number(&answer, "x-ratelimit-limit"), 3);
        remaining.push(header_number(&answer, "x-ratelimit-remaining"));
        let near = header(&answer.headers, "x-ratelimit-nearlimit").is_some();
        assert_eq!(near, remaining.last() == Some(&0), "{remaining:?}");
    }
    assert_eq!(remaining, [2, 1, 0]);

    let refused = api.get("/rest/api/2/myself").await;
    assert_eq!(refused.status, 429);
    assert_eq!(error_messages(&refused), ["Rate limit exceeded."]);
    // One token every 2 s: the wait is rounded up to whole seconds.
    assert!((1..=2).contains(&header_number(&refused, "retry-after")));
    assert_eq!(header_number(&refused, "x-ratelimit-limit"), 3);
    assert_eq!(header_number(&refused, "x-ratelimit-remaining"), 0);
    assert_eq!(
        header(&refused.headers, "ratelimit-reason"),
        Some("jira-burst-based")
    );
    let reset = header(&refused.headers, "x-ratelimit-reset").unwrap();
    time::OffsetDateTime::parse(reset, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(jira.rate_limited_calls(), 1);
    let statuses: Vec<u16> = jira.all_calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 200, 200, 429]);

    jira.set_rate_limit(None);
    let free = api.get("/rest/api/2/myself").await;
    assert_eq!(free.status, 200);
    assert_eq!(header(&free.headers, "x-ratelimit-limit"), None);
}

#[tokio::test]
async fn rate_limit_can_leave_retry_after_out() {
    let jira = start_default().await;
    jira.set_rate_limit(Some(RateLimit::new(0.5, 1).without_retry_after()));
    let api = Api::new(&jira);
    assert_eq!(api.get("/rest/api/2/myself").await.status, 200);
    let refused = api.get("/rest/api/2/myself").await;
    assert_eq!(refused.status, 429);
    assert_eq!(header(&refused.headers, "retry-after"), None);
    assert!(header(&refused.headers, "x-ratelimit-reset").is_some());
    assert_eq!(jira.rate_limit().map(|l| l.retry_after), Some(false));
}

#[tokio::test]
async fn refused_create_is_not_carried_out() {
    let jira = start_default().await;
    let receiver = Receiver::start(&[]).await;
    jira.register_webhook(WebhookTarget {
        issue_created_events: true,
        ..WebhookTarget::new(&receiver.url)
    })
    .unwrap();
    jira.set_rate_limit(Some(RateLimit::new(0.5, 1)));
    let api = Api::new(&jira);
    assert_eq!(api.get("/rest/api/2/myself").await.status, 200);
    let refused = api.create("s", &["a"], "r").await;
    assert_eq!(refused.status, 429);
    assert_eq!(jira.created_issue_count(), 0);
    let refused_call = jira.call_log().pop().unwrap();
    assert_eq!((refused_call.status, refused_call.caller), (429, None));

    jira.set_rate_limit(None);
    let created = api.create("s", &["a"], "r").await;
    assert_eq!(created.status, 201);
    // The refused call took no issue number and sent no webhook.
    assert_eq!(created.body["key"], "PROJ-1");
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    assert_eq!(receiver.hits().len(), 1);
}

#[tokio::test]
async fn tokens_refill_so_a_client_that_waits_retry_after_gets_through() {
    let jira = start_default().await;
    jira.set_rate_limit(Some(RateLimit::new(2.0, 1)));
    let api = Api::new(&jira);
    assert_eq!(api.get("/rest/api/2/myself").await.status, 200);
    let refused = api.get("/rest/api/2/myself").await;
    assert_eq!(refused.status, 429);
    let wait = header_number(&refused, "retry-after");
    assert_eq!(wait, 1);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(api.get("/rest/api/2/myself").await.status, 200);

    let calls = jira.all_calls();
    let waited = calls[2].received_at - calls[1].received_at;
    assert!(waited >= Duration::from_secs(wait), "{waited:?}");
    assert_eq!(jira.rate_limited_calls(), 1);
}

#[tokio::test]
async fn queued_failures_answer_5xx_without_processing_then_recover() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    jira.faults().fail_next(1, 500);
    jira.faults().fail_next(1, 503);
    let first = api.create("s", &[], "r").await;
    assert_eq!(first.status, 500);
    assert_eq!(error_messages(&first), ["Internal server error"]);
    let second = api.create("s", &[], "r").await;
    assert_eq!(second.status, 503);
    assert!(
        header(&second.headers, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(jira.created_issue_count(), 0);
    assert_eq!(api.create("s", &[], "r").await.status, 201);
    let statuses: Vec<u16> = jira.call_log().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 503, 201]);

    jira.faults().fail_next_matching("/transitions", 1, 502);
    assert_eq!(api.get("/rest/api/2/myself").await.status, 200);
    let failed = api
        .post(
            "/rest/api/2/issue/10001/transitions",
            json!({"transition": {"id": "21"}}),
        )
        .await;
    assert_eq!(failed.status, 502);
}

#[tokio::test]
async fn latency_delays_every_call() {
    let jira = start_default().await;
    let api = Api::new(&jira);
    jira.faults().set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(api.get("/rest/api/2/myself").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    jira.faults().clear();
}

// ----- webhooks ------------------------------------------------------------------------------

#[tokio::test]
async fn status_change_webhook_is_signed_and_identified() {
    let jira = start_default().await;
    jira.add_user(reviewer());
    let receiver = Receiver::start(&[]).await;
    jira.register_webhook(WebhookTarget::new(&receiver.url).with_secret("s3cret"))
        .unwrap();
    Api::new(&jira)
        .create("alice requested editor", &[], "r")
        .await;
    jira.transition_as("PROJ-1", "Approved", "712020:carol")
        .unwrap();

    let hits = receiver.wait_for(1).await;
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(
        header(&hit.headers, "content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        header(&hit.headers, "user-agent"),
        Some("Atlassian Webhook HTTP Client")
    );
    let id = header(&hit.headers, "x-atlassian-webhook-identifier").unwrap();
    assert!(!id.is_empty());
    assert!(header(&hit.headers, "x-atlassian-webhook-retry").is_none());
    let signature = header(&hit.headers, "x-hub-signature").unwrap();
    assert_eq!(signature, sign_webhook_body("s3cret", &hit.body));
    assert_eq!(signature.len(), "sha256=".len() + 64);
    assert_eq!(signature, signature.to_lowercase());

    let payload: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(payload["webhookEvent"], "jira:issue_updated");
    assert_eq!(payload["issue_event_type_name"], "issue_generic");
    assert!(payload["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(payload["user"]["accountId"], "712020:carol");
    assert_eq!(payload["user"]["accountType"], "atlassian");
    assert!(payload["user"].get("emailAddress").is_none());
    assert_eq!(payload["issue"]["id"], "10001");
    assert_eq!(payload["issue"]["key"], "PROJ-1");
    assert_eq!(payload["issue"]["fields"]["status"]["name"], "Approved");
    assert_eq!(
        payload["issue"]["fields"]["summary"],
        "alice requested editor"
    );
    assert_eq!(payload["changelog"]["items"][0]["toString"], "Approved");
    assert_eq!(payload["changelog"]["items"][0]["fromString"], "Pending");

    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    let deliveries = jira.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].id, id);
    assert_eq!(deliveries[0].status_code, Some(200));
    assert_eq!(deliveries[0].event, "jira:issue_updated/issue_generic");
}

#[tokio::test]
async fn api_transitions_and_comments_also_fire_webhooks() {
    let jira = start_default().await;
    let receiver = Receiver::start(&[]).await;
    jira.register_webhook(WebhookTarget::new(&receiver.url))
        .unwrap();
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    api.post("/rest/api/2/issue/10001/comment", json!({"body": "hello"}))
        .await;
    api.post(
        "/rest/api/2/issue/10001/transitions",
        json!({"transition": {"id": "31"}}),
    )
    .await;
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    let mut kinds: Vec<(String, Option<String>)> = receiver
        .hits()
        .iter()
        .map(|h| {
            let p: Value = serde_json::from_slice(&h.body).unwrap();
            assert!(
                h.headers.get("x-hub-signature").is_none(),
                "no secret, no signature"
            );
            (
                p["issue_event_type_name"].as_str().unwrap().to_string(),
                p.get("comment")
                    .map(|c| c["body"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("issue_commented".to_string(), Some("hello".to_string())),
            ("issue_generic".to_string(), None)
        ]
    );
}

#[tokio::test]
async fn issue_created_events_are_opt_in() {
    let jira = start_default().await;
    let quiet = Receiver::start(&[]).await;
    let chatty = Receiver::start(&[]).await;
    jira.register_webhook(WebhookTarget::new(&quiet.url))
        .unwrap();
    jira.register_webhook(WebhookTarget {
        issue_created_events: true,
        ..WebhookTarget::new(&chatty.url)
    })
    .unwrap();
    Api::new(&jira).create("s", &[], "r").await;
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    assert!(quiet.hits().is_empty());
    let hits = chatty.hits();
    assert_eq!(hits.len(), 1);
    let payload: Value = serde_json::from_slice(&hits[0].body).unwrap();
    assert_eq!(payload["webhookEvent"], "jira:issue_created");
    assert_eq!(payload["issue"]["key"], "PROJ-1");
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_identifier() {
    let jira = start_default().await;
    jira.add_user(reviewer());
    let receiver = Receiver::start(&[503, 429]).await;
    jira.register_webhook(WebhookTarget::new(&receiver.url).with_secret("k"))
        .unwrap();
    Api::new(&jira).create("s", &[], "r").await;
    jira.transition_as("PROJ-1", "Approved", "712020:carol")
        .unwrap();
    let hits = receiver.wait_for(3).await;
    assert_eq!(hits.len(), 3);
    let ids: Vec<&str> = hits
        .iter()
        .map(|h| header(&h.headers, "x-atlassian-webhook-identifier").unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));
    let retries: Vec<Option<&str>> = hits
        .iter()
        .map(|h| header(&h.headers, "x-atlassian-webhook-retry"))
        .collect();
    assert_eq!(retries, [None, Some("1"), Some("2")]);
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    let codes: Vec<Option<u16>> = jira.deliveries().iter().map(|d| d.status_code).collect();
    assert_eq!(codes, [Some(503), Some(429), Some(200)]);
    let attempts: Vec<u32> = jira.deliveries().iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
}

#[tokio::test]
async fn unreachable_receiver_is_retried_then_given_up() {
    let jira = start(FakeJiraOptions {
        webhook_max_attempts: 3,
        ..FakeJiraOptions::default()
    })
    .await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    jira.register_webhook(WebhookTarget::new(url)).unwrap();
    Api::new(&jira).create("s", &[], "r").await;
    jira.transition_as("PROJ-1", "Denied", &jira.plugin_user().account_id)
        .unwrap();
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    let deliveries = jira.deliveries();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status_code.is_none() && d.error.is_some())
    );
}

#[tokio::test]
async fn dropped_and_duplicated_webhooks_follow_the_knobs() {
    let jira = start_default().await;
    let receiver = Receiver::start(&[]).await;
    jira.register_webhook(WebhookTarget::new(&receiver.url))
        .unwrap();
    let plugin = jira.plugin_user().account_id;
    Api::new(&jira).create("s", &[], "r").await;

    jira.faults().set_webhook_drop_rate(1.0);
    jira.transition_as("PROJ-1", "Approved", &plugin).unwrap();
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    assert_eq!(jira.dropped_webhook_count(), 1);
    assert!(receiver.hits().is_empty());
    assert_eq!(
        jira.issue("PROJ-1").unwrap().status,
        "Approved",
        "the change itself happened"
    );

    jira.faults().set_webhook_drop_rate(0.0);
    jira.faults().set_webhook_duplicate_rate(1.0);
    jira.transition_as("PROJ-1", "Denied", &plugin).unwrap();
    let hits = receiver.wait_for(2).await;
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].body, hits[1].body);
    assert_eq!(
        header(&hits[0].headers, "x-atlassian-webhook-identifier"),
        header(&hits[1].headers, "x-atlassian-webhook-identifier")
    );
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    assert_eq!(jira.deliveries().iter().filter(|d| d.duplicate).count(), 1);
}

#[tokio::test]
async fn chaos_rates_are_reproducible_with_the_same_seed() {
    async fn run(seed: u64) -> (usize, Vec<String>) {
        let jira = start(FakeJiraOptions {
            rng_seed: seed,
            ..FakeJiraOptions::default()
        })
        .await;
        let receiver = Receiver::start(&[]).await;
        jira.register_webhook(WebhookTarget::new(&receiver.url))
            .unwrap();
        jira.faults().set_webhook_drop_rate(0.5);
        let plugin = jira.plugin_user().account_id;
        Api::new(&jira).create("s", &[], "r").await;
        for n in 0..10 {
            let status = if n % 2 == 0 { "Approved" } else { "Denied" };
            jira.transition_as("PROJ-1", status, &plugin).unwrap();
        }
        assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
        let mut ids: Vec<String> = jira.deliveries().into_iter().map(|d| d.id).collect();
        ids.sort();
        (jira.dropped_webhook_count(), ids)
    }
    let (dropped_a, ids_a) = run(42).await;
    let (dropped_b, ids_b) = run(42).await;
    assert_eq!(dropped_a, dropped_b);
    assert_eq!(ids_a, ids_b);
    assert!(dropped_a > 0 && dropped_a < 10, "{dropped_a}");
}

#[tokio::test]
async fn raw_webhooks_are_sent_exactly_as_given() {
    let jira = start_default().await;
    let receiver = Receiver::start(&[401]).await;
    jira.register_webhook(WebhookTarget::new(&receiver.url))
        .unwrap();
    Api::new(&jira).create("s", &[], "r").await;
    let mut forged = jira
        .status_webhook_payload("PROJ-1", &jira.plugin_user().account_id)
        .unwrap();
    forged["issue"]["fields"]["status"]["name"] = json!("Approved");
    let body = forged.to_string();
    let status = jira
        .deliver_raw_webhook(
            body.clone(),
            &[
                ("content-type", "application/json"),
                ("x-hub-signature", "sha256=00"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(status, 401);
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body, body.as_bytes());
    assert_eq!(
        header(&hits[0].headers, "x-hub-signature"),
        Some("sha256=00")
    );
    assert!(
        hits[0]
            .headers
            .get("x-atlassian-webhook-identifier")
            .is_none()
    );
}

#[tokio::test]
async fn webhooks_reach_an_https_receiver_that_trusts_a_given_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ca_pem, cert_pem, key_pem) = receiver_pki();
    let hits: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/",
            post(
                |State(hits): State<Arc<Mutex<Vec<Bytes>>>>, body: Bytes| async move {
                    hits.lock().unwrap().push(body);
                    StatusCode::OK
                },
            ),
        )
        .with_state(Arc::clone(&hits));
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.into_bytes(),
        key_pem.into_bytes(),
    )
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = axum_server::tls_rustls::from_tcp_rustls(listener, config).unwrap();
    tokio::spawn(server.serve(app.into_make_service()));

    let jira = start_default().await;
    jira.register_webhook(
        WebhookTarget::new(format!("https://localhost:{port}/")).trusting_ca(ca_pem),
    )
    .unwrap();
    Api::new(&jira).create("s", &[], "r").await;
    jira.transition_as("PROJ-1", "Approved", &jira.plugin_user().account_id)
        .unwrap();
    assert!(jira.wait_webhooks_idle(Duration::from_secs(5)).await);
    assert_eq!(
        jira.deliveries()[0].status_code,
        Some(200),
        "{:?}",
        jira.deliveries()
    );
    assert_eq!(hits.lock().unwrap().len(), 1);
}

// ----- small utilities -----------------------------------------------------------------------

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A CA and a `localhost` certificate for the HTTPS webhook receiver.
fn receiver_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

// ----- user search ---------------------------------------------------------------------------

fn searchable_users() -> Vec<JiraUser> {
    vec![
        JiraUser::new("712020:john", "John Smith").with_email("john@example.com"),
        JiraUser::new("712020:johnson", "Johnson").with_email("johnson@example.com"),
        JiraUser::new("712020:hidden", "Hidden").with_hidden_email("hidden@example.com"),
        JiraUser::new("712020:outsider", "Outsider")
            .with_email("outsider@example.com")
            .with_permissions([Permission::CreateIssues]),
    ]
}

fn account_ids(answer: &Answer) -> Vec<String> {
    answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["accountId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn user_search_matches_a_prefix_of_display_name_or_visible_email() {
    let jira = start(FakeJiraOptions {
        users: searchable_users(),
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    for version in ["2", "3"] {
        let answer = api
            .get(&format!("/rest/api/{version}/user/search?query=JOHN"))
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(account_ids(&answer), ["712020:john", "712020:johnson"]);
    }
    let exact = api
        .get("/rest/api/2/user/search?query=john%40example.com")
        .await;
    assert_eq!(account_ids(&exact), ["712020:john"]);
    assert_eq!(exact.body[0]["emailAddress"], "john@example.com");
    let none = api.get("/rest/api/2/user/search?query=nobody").await;
    assert_eq!(account_ids(&none), Vec::<String>::new());
}

#[tokio::test]
async fn user_search_neither_matches_nor_shows_hidden_emails() {
    let jira = start(FakeJiraOptions {
        users: searchable_users(),
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    let by_email = api
        .get("/rest/api/2/user/search?query=hidden%40example.com")
        .await;
    assert_eq!(account_ids(&by_email), Vec::<String>::new());
    let by_name = api.get("/rest/api/2/user/search?query=hid").await;
    assert_eq!(account_ids(&by_name), ["712020:hidden"]);
    assert!(by_name.body[0].get("emailAddress").is_none());
}

#[tokio::test]
async fn user_search_finds_nobody_without_browse_users_and_groups() {
    let jira = start(FakeJiraOptions {
        users: searchable_users(),
        ..FakeJiraOptions::default()
    })
    .await;
    let plugin = jira.plugin_user().account_id;
    let without: Vec<Permission> = Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::BrowseUsers)
        .collect();
    jira.set_user_permissions(&plugin, without).unwrap();
    let api = Api::new(&jira);
    let answer = api.get("/rest/api/2/user/search?query=john").await;
    assert_eq!(answer.status, 200);
    assert_eq!(account_ids(&answer), Vec::<String>::new());
}

#[tokio::test]
async fn viewissue_search_keeps_users_who_can_browse_the_project() {
    let jira = start(FakeJiraOptions {
        users: searchable_users(),
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    let everyone = api.get("/rest/api/2/user/search?query=outsider").await;
    assert_eq!(account_ids(&everyone), ["712020:outsider"]);
    let browsers = api
        .get("/rest/api/2/user/viewissue/search?query=outsider&projectKey=PROJ")
        .await;
    assert_eq!(account_ids(&browsers), Vec::<String>::new());
    let john = api
        .get("/rest/api/3/user/viewissue/search?query=john%40&projectKey=PROJ")
        .await;
    assert_eq!(account_ids(&john), ["712020:john"]);
    let no_project = api
        .get("/rest/api/2/user/viewissue/search?query=john&projectKey=NOPE")
        .await;
    assert_eq!(no_project.status, 404);
}

#[tokio::test]
async fn data_center_user_search_takes_username_and_answers_names() {
    let jira = start(FakeJiraOptions {
        deployment: Deployment::DataCenter,
        plugin_user: JiraUser::new("dc-plugin", "Plugin")
            .with_email("plugin@example.com")
            .with_name("plugin")
            .with_token("pat-123"),
        users: vec![JiraUser::new("dc-alice", "Alice").with_email("alice@example.com")],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::with_auth(&jira, Auth::Bearer("pat-123".into()));
    let answer = api
        .get("/rest/api/2/user/search?username=alice%40example.com")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body[0]["name"], "alice");
    assert!(answer.body[0].get("accountId").is_none());
    let cloud_style = api
        .get("/rest/api/2/user/search?query=alice%40example.com")
        .await;
    assert_eq!(cloud_style.status, 400);
}

// ----- watchers and reporter -----------------------------------------------------------------

fn watcher_ids(jira: &FakeJira, key: &str) -> Vec<String> {
    jira.issue(key).unwrap().watchers
}

#[tokio::test]
async fn watchers_are_added_by_a_json_string_once_each() {
    let jira = start(FakeJiraOptions {
        users: vec![reviewer()],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let plugin = jira.plugin_user().account_id;
    assert_eq!(watcher_ids(&jira, "PROJ-1"), std::slice::from_ref(&plugin));
    for _ in 0..2 {
        let added = api
            .post("/rest/api/2/issue/PROJ-1/watchers", json!("712020:carol"))
            .await;
        assert_eq!(added.status, 204);
    }
    assert_eq!(
        watcher_ids(&jira, "PROJ-1"),
        [plugin, "712020:carol".to_owned()]
    );
    let listed = api.get("/rest/api/2/issue/PROJ-1/watchers").await;
    assert_eq!(listed.body["watchCount"], 2);
    let nobody = api
        .post("/rest/api/2/issue/PROJ-1/watchers", json!("no-such-id"))
        .await;
    assert_eq!(nobody.status, 400);
}

#[tokio::test]
async fn adding_someone_else_as_watcher_needs_manage_watchers() {
    let jira = start(FakeJiraOptions {
        users: vec![reviewer()],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let plugin = jira.plugin_user().account_id;
    let without: Vec<Permission> = Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::ManageWatchers)
        .collect();
    jira.set_user_permissions(&plugin, without).unwrap();
    let refused = api
        .post("/rest/api/2/issue/PROJ-1/watchers", json!("712020:carol"))
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(watcher_ids(&jira, "PROJ-1"), [plugin]);
}

#[tokio::test]
async fn with_watching_disabled_every_watcher_call_is_refused() {
    let jira = start(FakeJiraOptions {
        users: vec![reviewer()],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    jira.set_watching_enabled(false);
    let refused = api
        .post("/rest/api/2/issue/PROJ-1/watchers", json!("712020:carol"))
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(error_messages(&refused), ["Watching is disabled."]);
}

#[tokio::test]
async fn data_center_watchers_are_named_by_username() {
    let jira = start(FakeJiraOptions {
        deployment: Deployment::DataCenter,
        plugin_user: JiraUser::new("dc-plugin", "Plugin")
            .with_name("plugin")
            .with_token("pat-123"),
        users: vec![JiraUser::new("dc-alice", "Alice").with_name("alice")],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::with_auth(&jira, Auth::Bearer("pat-123".into()));
    api.create("s", &[], "r").await;
    let added = api
        .post("/rest/api/2/issue/PROJ-1/watchers", json!("alice"))
        .await;
    assert_eq!(added.status, 204);
    assert!(watcher_ids(&jira, "PROJ-1").contains(&"dc-alice".to_owned()));
}

#[tokio::test]
async fn the_reporter_is_set_by_an_edit_with_modify_reporter_only() {
    let jira = start(FakeJiraOptions {
        users: vec![reviewer()],
        ..FakeJiraOptions::default()
    })
    .await;
    let api = Api::new(&jira);
    api.create("s", &[], "r").await;
    let edit = json!({"fields": {"reporter": {"accountId": "712020:carol"}}});
    let done = api.put("/rest/api/2/issue/PROJ-1", edit.clone()).await;
    assert_eq!(done.status, 204);
    assert_eq!(
        jira.issue("PROJ-1").unwrap().reporter_account_id,
        "712020:carol"
    );
    let unknown = api
        .put(
            "/rest/api/2/issue/PROJ-1",
            json!({"fields": {"reporter": {"accountId": "nobody"}}}),
        )
        .await;
    assert_eq!(unknown.status, 400);

    let plugin = jira.plugin_user().account_id;
    let without: Vec<Permission> = Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::ModifyReporter)
        .collect();
    jira.set_user_permissions(&plugin, without).unwrap();
    let refused = api.put("/rest/api/2/issue/PROJ-1", edit).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body["errors"]["reporter"]
            .as_str()
            .unwrap()
            .contains("cannot be set")
    );
}
