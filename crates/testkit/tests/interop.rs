//! FakeTeleport judged by a protocol peer we did not write: Teleport's own Go client library (the
//! `api` module of the Teleport 10.3 line), driven by the Go program in `interop/`.
//!
//! This test starts FakeTeleport, writes identity files in every key flavour the testkit writes,
//! builds `interop/` with `go build` into `<target>/interop/`, runs it against the fake and reads its
//! report: one `PASS <check>` or `FAIL <check>: <why>` line per check, then `DONE …`. When the program
//! prints `ASK <action>`, the test acts on the fake (ends the watch streams, restarts Auth) and answers
//! `ok`. It fails listing every FAIL line, every expected check that did not report, and the program's
//! stderr.
//!
//! Needs the Go toolchain; `go build` fetches the modules pinned by `interop/go.mod` and `go.sum` on
//! first use (Go's module and build caches make later runs fast).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use teleport_proto::types::RequestState;
use testkit::pki::KeyFlavour;
use testkit::teleport::{FakeTeleport, FakeTeleportOptions, IdentityOptions, UserSpec};

const CLUSTER: &str = "interop.example.com";
const SERVER_VERSION: &str = "17.0.2";
const PROXY_PUBLIC_ADDR: &str = "teleport.interop.example.com:443";
const PLUGIN_USER: &str = "access-plugin";
/// What the Go program sets as the delegator of its SetAccessRequestState calls.
const DELEGATOR: &str = "jira:approver@example.com";
/// The whole Go run (its steps time out after 5 s each).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Key flavours written for the plugin identity, with the names the Go program uses.
const FLAVOURS: [(&str, KeyFlavour); 6] = [
    ("rsa-pkcs1", KeyFlavour::RsaPkcs1),
    ("pkcs8-rsa", KeyFlavour::Pkcs8Rsa),
    ("pkcs8-ecdsa", KeyFlavour::Pkcs8Ecdsa),
    ("sec1-ecdsa", KeyFlavour::Sec1Ecdsa),
    ("pkcs8-ed25519", KeyFlavour::Pkcs8Ed25519),
    (
        "rsa-pkcs8-under-rsa-label",
        KeyFlavour::RsaPkcs8UnderRsaLabel,
    ),
];

/// Every check the Go program must report as passed; a check that goes missing fails the test too.
const EXPECTED_CHECKS: &[&str] = &[
    "identity/rsa-pkcs1",
    "identity/pkcs8-rsa",
    "identity/pkcs8-ecdsa",
    "identity/sec1-ecdsa",
    "identity/pkcs8-ed25519",
    "identity/rsa-pkcs8-under-rsa-label-refused-by-10.3",
    "ping",
    "proxy/tls-routing",
    "watch/init",
    "watch/put-on-create",
    "watch/put-on-review",
    "watch/put-on-resolve",
    "watch/delete-on-delete",
    "get/by-id",
    "get/unknown-id-is-empty",
    "get/filter-by-user-and-state",
    "set-state/deny-with-delegator-and-reason",
    "set-state/denied-stays-denied",
    "set-state/deny-again-accepted",
    "review/thresholds-approve",
    "review/thresholds-deny",
    "review/duplicate-refused",
    "review/pending-proposal-refused",
    "plugin-data/none-at-first",
    "plugin-data/create-with-empty-expect",
    "plugin-data/stale-expect-is-compare-failed",
    "plugin-data/matching-expect-swaps",
    "plugin-data/empty-value-deletes",
    "errors/not-found",
    "errors/access-denied",
    "errors/bad-parameter",
    "errors/not-implemented",
    "tls/no-client-cert",
    "tls/foreign-ca",
    "watch/server-close-is-connection-problem",
    "reconnect/after-auth-restart",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/testkit sits two levels below the workspace root")
        .to_path_buf()
}

/// The cargo target directory this test binary was built into (`<target>/<profile>/deps/<bin>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map_or_else(|| workspace_root().join("target"), Path::to_path_buf)
}

/// The Go toolchain: `go` on PATH, else under `$GOROOT` or the standard install in `/usr/local/go`
/// (a non-login shell may not have it on PATH).
fn go_command() -> Option<PathBuf> {
    let candidates = [
        Some(PathBuf::from("go")),
        std::env::var_os("GOROOT").map(|root| Path::new(&root).join("bin/go")),
        Some(PathBuf::from("/usr/local/go/bin/go")),
    ];
    candidates.into_iter().flatten().find(|go| {
        Command::new(go)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Builds the Go program; Go downloads the pinned modules itself on a fresh machine.
fn build_interop(go: &Path) -> PathBuf {
    let out_dir = target_dir().join("interop");
    std::fs::create_dir_all(&out_dir).unwrap();
    let binary = out_dir.join("teleport-interop");
    let started = Instant::now();
    let output = Command::new(go)
        .args(["build", "-trimpath", "-buildvcs=false", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(workspace_root().join("interop"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go build of interop/ failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "interop: go build took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    binary
}

async fn cluster(options: FakeTeleportOptions) -> FakeTeleport {
    let fake = FakeTeleport::start(options).await;
    fake.add_user(PLUGIN_USER, UserSpec::plugin());
    fake.add_user(
        "alice",
        UserSpec::requester(&["editor"]).with_thresholds(2, 1),
    );
    fake.add_user("dave", UserSpec::requester(&["editor"]));
    fake.add_user("bob", UserSpec::reviewer(&["editor"]));
    fake.add_user("carol", UserSpec::reviewer(&["editor"]));
    fake.add_user("admin", UserSpec::admin());
    fake
}

fn options() -> FakeTeleportOptions {
    FakeTeleportOptions {
        cluster_name: CLUSTER.into(),
        server_version: SERVER_VERSION.into(),
        advanced_access_workflows: true,
        proxy_public_addr: PROXY_PUBLIC_ADDR.into(),
        ..FakeTeleportOptions::default()
    }
}

/// Writes every file the Go program reads (see the header of `interop/main.go`).
async fn write_identities(fake: &FakeTeleport, dir: &Path) {
    for (name, flavour) in FLAVOURS {
        fake.write_identity_file(
            PLUGIN_USER,
            &dir.join(format!("{PLUGIN_USER}.{name}.identity")),
            IdentityOptions::default().with_key(flavour),
        )
        .unwrap();
    }
    for user in ["alice", "dave", "bob", "carol", "admin"] {
        fake.write_identity_file(
            user,
            &dir.join(format!("{user}.identity")),
            IdentityOptions::default(),
        )
        .unwrap();
    }
    std::fs::write(dir.join("host-ca.pem"), fake.host_ca_pem()).unwrap();

    // The plugin's identity from another cluster of the same name (another User CA), trusting this
    // cluster's Host CA: only the client certificate is wrong.
    let other = cluster(options()).await;
    let mine = fake
        .issue_identity(PLUGIN_USER, &IdentityOptions::default())
        .unwrap();
    let mut foreign = other
        .issue_identity(PLUGIN_USER, &IdentityOptions::default())
        .unwrap();
    foreign.ca_pems = mine.ca_pems;
    foreign.ssh_ca_lines = mine.ssh_ca_lines;
    std::fs::write(dir.join("foreign-ca.identity"), foreign.to_identity_file()).unwrap();
}

/// What the Go program printed and how it ended.
struct Report {
    stdout: String,
    stderr: String,
    success: bool,
    status: String,
}

/// Runs the Go program, answering its `ASK` lines by acting on the fake. Blocking: call it off the
/// runtime's worker (the fake keeps serving on the other threads).
fn run_interop(binary: &Path, fake: &FakeTeleport, dir: &Path) -> Report {
    let mut child = Command::new(binary)
        .arg("-auth")
        .arg(fake.auth_addr().to_string())
        .arg("-proxy")
        .arg(fake.proxy_addr().to_string())
        .args(["-cluster", CLUSTER])
        .args(["-server-version", SERVER_VERSION])
        .args(["-proxy-public-addr", PROXY_PUBLIC_ADDR])
        .arg("-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut answers = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let child = Arc::new(Mutex::new(child));
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (child, finished) = (Arc::clone(&child), Arc::clone(&finished));
        std::thread::spawn(move || {
            let deadline = Instant::now() + RUN_TIMEOUT;
            while !finished.load(Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    let _ = child.lock().unwrap().kill();
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let runtime = tokio::runtime::Handle::current();
    let mut out = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        let Some(action) = line.strip_prefix("ASK ") else {
            continue;
        };
        let answer = match action {
            "drop-watchers" => {
                fake.drop_watch_streams();
                "ok"
            }
            "restart-auth" => {
                runtime.block_on(fake.restart());
                "ok"
            }
            _ => "unknown action",
        };
        let _ = writeln!(answers, "{answer}");
    }
    drop(answers);
    let status = child.lock().unwrap().wait().unwrap();
    finished.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    Report {
        stdout: out,
        stderr: stderr_reader.join().unwrap(),
        success: status.success(),
        status: status.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teleports_go_client_accepts_fake_teleport() {
    let Some(go) = go_command() else {
        panic!(
            "the interop suite needs the Go toolchain (`go` on PATH, Go 1.21 or newer); install Go to run it"
        );
    };
    let binary = tokio::task::block_in_place(|| build_interop(&go));
    let fake = cluster(options()).await;
    let dir = tempfile::tempdir().unwrap();
    write_identities(&fake, dir.path()).await;

    let started = Instant::now();
    // The Go program talks to the fake served by this runtime, so wait for it off the runtime.
    let report = tokio::task::block_in_place(|| run_interop(&binary, &fake, dir.path()));
    eprintln!(
        "interop: the Go client ran for {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let (stdout, stderr) = (&report.stdout, &report.stderr);

    let mut problems: Vec<String> = stdout
        .lines()
        .filter(|line| line.starts_with("FAIL "))
        .map(str::to_owned)
        .collect();
    for check in EXPECTED_CHECKS {
        if !stdout.lines().any(|line| line == format!("PASS {check}")) && !has_fail(stdout, check) {
            problems.push(format!("MISSING {check}: the Go program did not report it"));
        }
    }
    if !stdout.lines().any(|line| line.starts_with("DONE ")) {
        problems.push(format!(
            "the Go program did not finish (exit status {})",
            report.status
        ));
    }
    // The delegator travels in RequestStateSetter.Delegator; only the server's audit can show it.
    let audited = fake.audit_events().iter().any(|event| {
        event.delegator == DELEGATOR
            && event.reason == "denied in Jira"
            && event.state == RequestState::Denied
            && event.caller == PLUGIN_USER
    });
    if !audited {
        problems.push(format!(
            "AUDIT: no SetAccessRequestState(DENIED, \"denied in Jira\") with delegator {DELEGATOR:?} \
             was recorded; audit: {:?}",
            fake.audit_events()
        ));
    }
    assert!(
        problems.is_empty() && report.success,
        "Teleport's Go client disagrees with FakeTeleport:\n{}\n\n--- interop stdout ---\n{stdout}\n--- interop stderr ---\n{stderr}",
        problems.join("\n"),
    );
    eprintln!("{stdout}");
}

fn has_fail(stdout: &str, check: &str) -> bool {
    let prefix = format!("FAIL {check}:");
    stdout.lines().any(|line| line.starts_with(&prefix))
}
