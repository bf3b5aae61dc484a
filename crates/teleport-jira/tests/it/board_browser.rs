//! The demo's board page in a real headless Chromium, used as a person uses it: typing into its
//! forms, clicking its buttons and links, and reading what the page shows. Chromium is driven
//! through chromedriver's W3C WebDriver HTTP API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{BINARY, WAIT, eventually, free_port};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key under which WebDriver returns an element's reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How often a person waiting for the plugin reloads a page (pacing, not an assertion).
const PACE: Duration = Duration::from_millis(200);

#[tokio::test]
async fn a_person_in_chromium_asks_for_access_on_the_board_and_approving_the_card_approves_the_request()
 {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: run .ci/browser-deps.sh (as root) to install chromium and chromedriver"
        );
    }
    let (mut demo, driver) = tokio::join!(Demo::start(), ChromeDriver::start());
    let browser = driver.new_session().await;

    // Run in a task so that a failed assertion still closes the browser: Chromium outlives a
    // killed chromedriver.
    let outcome = tokio::spawn(ask_and_approve(browser.clone(), demo.board.clone())).await;
    let console_errors = browser.console_errors().await;
    browser.quit().await;
    drop(driver);
    let demo_log = demo.output();
    let stopped = demo.interrupt().await;

    if let Err(failure) = outcome {
        eprintln!("the demo's output:\n{demo_log}");
        std::panic::resume_unwind(failure.into_panic());
    }
    assert!(
        console_errors.is_empty(),
        "the board's pages logged errors in the browser console: {console_errors:#?}"
    );
    assert!(
        stopped.success(),
        "Ctrl-C stops the demo cleanly: {stopped}"
    );
}

/// What a person does on the board: ask for access, follow the new card, approve it with a
/// reason, and watch Teleport's request and the plugin's comment follow.
async fn ask_and_approve(browser: Browser, board: String) {
    browser.goto(&format!("{board}/")).await;
    assert_eq!(browser.title().await, "teleport-jira demo board");

    // Ask for access. Markup characters in the reason come back as text, not as markup.
    let reason = "browser <test> & \"quotes\"";
    browser.type_into("input[name=roles]", "auditor").await;
    browser.type_into("input[name=reason]", reason).await;
    let submit = browser.find("form[action='/requests'] button").await;
    assert_eq!(
        browser.text(&submit).await.unwrap(),
        "Request as alice@example.com"
    );
    browser.click_through(&submit).await;
    browser.wait_for_url(&format!("{board}/")).await;

    // The plugin files the request as the fourth issue (the walk-through made three); the card
    // shows in Pending once the person refreshes.
    let card_shows = eventually(|| async {
        if browser.card("Pending", "PROJ-4").await.is_some() {
            return true;
        }
        browser.refresh_board().await;
        false
    })
    .await;
    assert!(
        card_shows,
        "PROJ-4 never showed in the Pending column; the board shows:\n{}",
        browser.page_text().await
    );

    // Its page: pending, with the request as asked, and a form to decide it.
    let card = browser.card("Pending", "PROJ-4").await.unwrap();
    browser.click_through(&card).await;
    let issue_url = format!("{board}/browse/PROJ-4");
    browser.wait_for_url(&issue_url).await;
    assert_eq!(browser.text_of("strong.status").await, "Pending");
    let description = browser.text_of("pre").await;
    assert!(
        description.contains("auditor") && description.contains(reason),
        "the issue describes the request as asked: {description}"
    );
    let request_id = description
        .lines()
        .find_map(|line| line.strip_prefix("Request ID: *"))
        .and_then(|rest| rest.strip_suffix('*'))
        .unwrap_or_else(|| panic!("the issue names its request: {description}"))
        .to_owned();

    // Approve with a reason.
    browser
        .type_into("input[name=reason]", "fine by me, from the browser")
        .await;
    let approve = browser.find("button[name=to][value=Approved]").await;
    assert_eq!(browser.text(&approve).await.unwrap(), "Approve");
    browser.click_through(&approve).await;
    // Deciding leads back to the issue, moved and without the form.
    browser.wait_for_url(&issue_url).await;
    assert_eq!(browser.text_of("strong.status").await, "Approved");
    assert!(browser.try_find("form").await.is_err());

    // The plugin approves the request in Teleport and says so on the issue.
    let commented = eventually(|| async {
        let comments = browser.texts("pre.comment").await.unwrap_or_default();
        if comments.iter().any(|comment| {
            comment.contains("Access request has been approved")
                && comment.contains("Reason: fine by me, from the browser")
        }) {
            return true;
        }
        let _ = browser.try_goto(&issue_url).await;
        tokio::time::sleep(PACE).await;
        false
    })
    .await;
    assert!(
        commented,
        "the plugin never commented that the request was approved; the issue shows:\n{}",
        browser.page_text().await
    );

    // Back on the board: the card is under Approved and the request's state reads APPROVED.
    let to_board = browser.find("a[href='/']").await;
    assert_eq!(browser.text(&to_board).await.unwrap(), "Board");
    browser.click_through(&to_board).await;
    browser.wait_for_url(&format!("{board}/")).await;
    let approved = eventually(|| async {
        if browser
            .request_row(&request_id)
            .await
            .is_some_and(|(_, state)| state == "APPROVED")
        {
            return true;
        }
        browser.refresh_board().await;
        false
    })
    .await;
    assert!(
        approved,
        "request {request_id} never read APPROVED on the board:\n{}",
        browser.page_text().await
    );
    let (cells, _) = browser.request_row(&request_id).await.unwrap();
    assert_eq!(cells[1..3], ["alice@example.com", "auditor"]);
    assert!(browser.card("Approved", "PROJ-4").await.is_some());
    assert!(browser.card("Pending", "PROJ-4").await.is_none());
}

/// `teleport-jira demo --keep-running`, up to the line offering its board.
struct Demo {
    process: Child,
    board: String,
    output: Arc<Mutex<String>>,
}

impl Demo {
    async fn start() -> Self {
        let mut process = Command::new(BINARY)
            .args(["demo", "--keep-running"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the teleport-jira binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (board_tx, board_rx) = tokio::sync::oneshot::channel();
        let mut board_tx = Some(board_tx);
        let mut stdout = BufReader::new(process.stdout.take().unwrap()).lines();
        let collected = output.clone();
        // Keeps reading for as long as the demo runs: it must never write into a closed pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(url) = line.strip_prefix("    the board (create requests, move cards):")
                    && let Some(tx) = board_tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
                let mut output = collected.lock().unwrap();
                output.push_str(&line);
                output.push('\n');
            }
        });
        let mut stderr = BufReader::new(process.stderr.take().unwrap()).lines();
        let collected = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let mut output = collected.lock().unwrap();
                output.push_str(&line);
                output.push('\n');
            }
        });
        // The walk-through runs first: three requests, each waiting on the plugin.
        let board = tokio::time::timeout(2 * WAIT, board_rx).await;
        let Ok(Ok(board)) = board else {
            panic!(
                "the demo never offered its board; its output:\n{}",
                output.lock().unwrap()
            );
        };
        Self {
            process,
            board,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Ctrl-C, and the exit status.
    async fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.process.id().expect("the demo is running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(WAIT, self.process.wait())
            .await
            .expect("the demo stops after Ctrl-C")
            .unwrap()
    }
}

/// chromedriver on a free loopback port, killed when dropped.
struct ChromeDriver {
    _process: Child,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl ChromeDriver {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("chromedriver.log");
        let port = free_port();
        let mut process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let ready = eventually(|| async {
            let Ok(answer) = http.get(format!("{url}/status")).send().await else {
                return false;
            };
            let status: Value = answer.json().await.unwrap_or_default();
            status["value"]["ready"] == json!(true)
        })
        .await;
        assert!(
            ready,
            "chromedriver never got ready ({:?}); its log:\n{}",
            process.try_wait(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self {
            _process: process,
            url,
            http,
            _dir: dir,
        }
    }

    /// A headless Chromium that can run as root on a machine with a small /dev/shm.
    async fn new_session(&self) -> Browser {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1280,1024",
                        ],
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "timeouts": { "pageLoad": WAIT.as_millis() as u64 },
                }
            }
        });
        let answer = self
            .http
            .post(format!("{}/session", self.url))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers");
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or_default();
        let Some(id) = body["value"]["sessionId"].as_str() else {
            panic!("chromedriver started no Chromium ({status}): {body}");
        };
        Browser {
            http: self.http.clone(),
            session: format!("{}/session/{id}", self.url),
            pid: body["value"]["capabilities"]["goog:processID"].as_u64(),
        }
    }
}

/// One WebDriver session. Lookups return `Err` with WebDriver's message (no such element, stale
/// element, ...) so polls can retry them; actions a test cannot go on without panic.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    session: String,
    /// Chromium's own process, as chromedriver reports it.
    pid: Option<u64>,
}

impl Browser {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        // chromedriver refuses a DELETE or GET with a body.
        if method == reqwest::Method::POST {
            request = request.json(&body);
        }
        let answer = request.send().await.map_err(|err| err.to_string())?;
        let status = answer.status();
        let body: Value = answer.json().await.map_err(|err| err.to_string())?;
        if status.is_success() {
            Ok(body["value"].clone())
        } else {
            let message = body["value"]["message"].as_str().unwrap_or_default();
            Err(format!(
                "{method} {path}: {status} {}: {}",
                body["value"]["error"],
                message.lines().next().unwrap_or_default()
            ))
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, Value::Null).await
    }

    async fn try_goto(&self, url: &str) -> Result<(), String> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    async fn goto(&self, url: &str) {
        self.try_goto(url).await.unwrap();
    }

    async fn url(&self) -> String {
        self.get("/url").await.unwrap().as_str().unwrap().to_owned()
    }

    /// Waits until the browser shows `url` (after a click that navigates).
    async fn wait_for_url(&self, url: &str) {
        let there = eventually(|| async { self.get("/url").await.is_ok_and(|at| at == url) }).await;
        assert!(
            there,
            "the browser never got to {url}; it is at {}",
            self.url().await
        );
    }

    async fn title(&self) -> String {
        self.get("/title")
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find_all_in(&self, scope: &str, css: &str) -> Result<Vec<String>, String> {
        let found = self
            .post(
                &format!("{scope}/elements"),
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|element| element[ELEMENT].as_str().map(str::to_owned))
            .collect())
    }

    async fn find_all(&self, css: &str) -> Result<Vec<String>, String> {
        self.find_all_in("", css).await
    }

    async fn try_find(&self, css: &str) -> Result<String, String> {
        self.find_all(css)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| format!("nothing matches {css}"))
    }

    async fn find(&self, css: &str) -> String {
        match self.try_find(css).await {
            Ok(element) => element,
            Err(err) => panic!("{err}; the page shows:\n{}", self.page_text().await),
        }
    }

    async fn text(&self, element: &str) -> Result<String, String> {
        let text = self.get(&format!("/element/{element}/text")).await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    async fn text_of(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.text(&element).await.unwrap()
    }

    async fn texts(&self, css: &str) -> Result<Vec<String>, String> {
        let mut texts = Vec::new();
        for element in self.find_all(css).await? {
            texts.push(self.text(&element).await?);
        }
        Ok(texts)
    }

    async fn page_text(&self) -> String {
        match self.try_find("body").await {
            Ok(body) => self.text(&body).await.unwrap_or_else(|err| err),
            Err(err) => err,
        }
    }

    /// Replaces what the field holds with `text`, typed key by key.
    async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        self.post(&format!("/element/{field}/clear"), json!({}))
            .await
            .unwrap();
        self.post(&format!("/element/{field}/value"), json!({ "text": text }))
            .await
            .unwrap();
    }

    /// Clicks a link or a submit button, and waits until the page it was on has gone.
    async fn click_through(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await
            .unwrap();
        let gone = eventually(|| async {
            self.get(&format!("/element/{element}/name"))
                .await
                .is_err_and(|err| err.contains("stale element reference"))
        })
        .await;
        assert!(
            gone,
            "the click led nowhere; the page shows:\n{}",
            self.page_text().await
        );
    }

    async fn click_css(&self, css: &str) -> Result<(), String> {
        let element = self.try_find(css).await?;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await
            .map(drop)
    }

    /// Clicks the board's Refresh link, then lets the machine breathe before the next look.
    async fn refresh_board(&self) {
        let _ = self.click_css("a[href='/']").await;
        tokio::time::sleep(PACE).await;
    }

    /// The link of the card `key` in the board's `column`, if it is there.
    async fn card(&self, column: &str, key: &str) -> Option<String> {
        for section in self.find_all(".board section").await.ok()? {
            let heading = self
                .find_all_in(&format!("/element/{section}"), "h3")
                .await
                .ok()?;
            if self.text(heading.first()?).await.ok()? != column {
                continue;
            }
            for link in self
                .find_all_in(&format!("/element/{section}"), "a")
                .await
                .ok()?
            {
                if self.text(&link).await.ok()? == key {
                    return Some(link);
                }
            }
        }
        None
    }

    /// The Teleport requests table's row for `request_id`: its cells' texts, and its `td.state`.
    async fn request_row(&self, request_id: &str) -> Option<(Vec<String>, String)> {
        for row in self.find_all("table tr").await.ok()? {
            let row = format!("/element/{row}");
            let mut cells = Vec::new();
            for cell in self.find_all_in(&row, "td").await.ok()? {
                cells.push(self.text(&cell).await.ok()?);
            }
            if cells.first().map(String::as_str) != Some(request_id) {
                continue;
            }
            let state = self.find_all_in(&row, "td.state").await.ok()?;
            return Some((cells, self.text(state.first()?).await.ok()?));
        }
        None
    }

    /// The console's errors on every page this session loaded (chromedriver's browser log).
    async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .post("/se/log", json!({ "type": "browser" }))
            .await
            .unwrap_or_else(|err| json!([{ "level": "SEVERE", "message": err }]));
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Closes Chromium; if chromedriver cannot, ends its process, which would outlive chromedriver.
    async fn quit(&self) {
        let deleted = tokio::time::timeout(
            Duration::from_secs(30),
            self.call(reqwest::Method::DELETE, "", Value::Null),
        )
        .await;
        if let Ok(Ok(_)) = deleted {
            return;
        }
        eprintln!("chromedriver did not close Chromium ({deleted:?}); ending it");
        if let Some(pid) = self.pid {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}
