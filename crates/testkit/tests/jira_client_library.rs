//! FakeJira judged by a widely used client we did not write: Python's `jira` package, driven by
//! `crates/testkit/clients/jira-python/check_fake_jira.py` over HTTPS.
//!
//! This test starts FakeJira, installs the pinned `requirements.txt` into a virtual environment
//! under `<target>/jira-python/` (once; again when the file changes), runs the script and reads
//! its report: one `PASS <check>` or `FAIL <check>: <why>` line per check, then
//! `N passed, N failed`. When the script prints `ASK <action>`, the test changes the fake (sets or
//! lifts a rate limit) and answers `ok`. It fails listing every FAIL line, every expected check
//! that did not report, and the script's stderr.
//!
//! Needs `python3`; pip fetches the pinned packages from PyPI on first use. Where `python3 -m venv`
//! is unavailable (Debian without `python3-venv`), the packages go into a plain directory with
//! `pip install --target` instead.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::jira::{FakeJira, FakeJiraOptions, RateLimit};

/// The whole script run (pip is done before it starts).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Every check the script must report as passed; a check that goes missing fails the test too.
const EXPECTED_CHECKS: &[&str] = &[
    "server-info",
    "myself",
    "fields",
    "statuses",
    "issue-types",
    "project",
    "create-issue",
    "read-issue",
    "add-comment",
    "list-comments",
    "list-transitions",
    "transition-by-name",
    "transition-by-id",
    "changelog/embedded-newest-100",
    "changelog/embedded-newest-first",
    "changelog/embedded-newest-is-last-change",
    "changelog/paged-all",
    "changelog/paged-oldest-first",
    "changelog/paged-finds-the-approval",
    "search-jql",
    "rate-limit/set",
    "rate-limit/retried-after-waiting",
    "delete-issue",
    "errors/not-found",
];

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/jira-python")
}

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

/// How to run Python with the pinned packages.
struct PythonEnv {
    python: PathBuf,
    /// Set when the packages sit in a `pip install --target` directory rather than a venv.
    pythonpath: Option<PathBuf>,
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The Python that has the pinned packages; installs them unless the stamp says this exact
/// requirements file is installed already.
fn python_env() -> PythonEnv {
    let python3_works = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        python3_works,
        "the Jira client-library test needs python3 on PATH (with pip); install Python 3 to run it"
    );
    let requirements = client_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let root = target_dir().join("jira-python");
    let stamp = root.join("installed-requirements.txt");
    let venv_python = root.join("venv/bin/python");
    if std::fs::read_to_string(&stamp).is_ok_and(|done| done == wanted) {
        return if venv_python.exists() {
            PythonEnv {
                python: venv_python,
                pythonpath: None,
            }
        } else {
            PythonEnv {
                python: PathBuf::from("python3"),
                pythonpath: Some(root.join("site")),
            }
        };
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let started = Instant::now();
    let env = install(&root, &requirements).unwrap_or_else(|why| panic!("{why}"));
    std::fs::write(&stamp, wanted).unwrap();
    eprintln!(
        "jira-python: installed the requirements in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    env
}

/// A venv with the requirements, or a `pip install --target` directory where there is no venv.
fn install(root: &Path, requirements: &Path) -> Result<PythonEnv, String> {
    let pip_args = [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ];
    let venv = root.join("venv");
    let venv_made = run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    );
    match venv_made {
        Ok(()) => {
            let python = venv.join("bin/python");
            run(
                Command::new(&python)
                    .args(pip_args)
                    .arg("-r")
                    .arg(requirements),
                "pip install -r requirements.txt into the venv",
            )?;
            Ok(PythonEnv {
                python,
                pythonpath: None,
            })
        }
        Err(why) => {
            eprintln!("jira-python: no venv ({why}); installing with pip --target instead");
            let site = root.join("site");
            run(
                Command::new("python3")
                    .args(pip_args)
                    .arg("--target")
                    .arg(&site)
                    .arg("-r")
                    .arg(requirements),
                "pip install --target -r requirements.txt",
            )?;
            Ok(PythonEnv {
                python: PathBuf::from("python3"),
                pythonpath: Some(site),
            })
        }
    }
}

/// What the script printed and how it ended.
struct Report {
    stdout: String,
    stderr: String,
    success: bool,
    status: String,
}

fn script_command(env: &PythonEnv, jira: &FakeJira, ca_file: &Path) -> Command {
    let user = jira.plugin_user();
    let mut command = Command::new(&env.python);
    command
        .arg(client_dir().join("check_fake_jira.py"))
        .arg(jira.url())
        .arg(user.email.unwrap_or_default())
        .arg(user.token.unwrap_or_default())
        .arg("PROJ")
        .env("REQUESTS_CA_BUNDLE", ca_file)
        .env("NO_PROXY", "localhost,127.0.0.1")
        .env("no_proxy", "localhost,127.0.0.1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(site) = &env.pythonpath {
        command.env("PYTHONPATH", site);
    }
    command
}

/// Acts on one `ASK` line of the script.
fn answer(jira: &FakeJira, action: &str) -> &'static str {
    match action {
        // One call a second, one at a time: the script's second quick call is refused.
        "rate-limit" => {
            jira.set_rate_limit(Some(RateLimit::new(1.0, 1)));
            "ok"
        }
        "rate-limit-off" => {
            jira.set_rate_limit(None);
            "ok"
        }
        _ => "unknown action",
    }
}

/// Runs the script, answering its `ASK` lines. Blocking: call it off the runtime's worker (the
/// fake keeps serving on the other threads).
fn run_script(mut command: Command, jira: &FakeJira) -> Report {
    let mut child = command.spawn().unwrap();
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
    let mut out = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if let Some(action) = line.strip_prefix("ASK ") {
            let _ = writeln!(answers, "{}", answer(jira, action));
        }
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

/// Every FAIL line, every expected check that did not report, and a missing summary line.
fn problems(report: &Report) -> Vec<String> {
    let stdout = &report.stdout;
    let mut problems: Vec<String> = stdout
        .lines()
        .filter(|line| line.starts_with("FAIL "))
        .map(str::to_owned)
        .collect();
    for check in EXPECTED_CHECKS {
        let reported = stdout.lines().any(|line| {
            line == format!("PASS {check}") || line.starts_with(&format!("FAIL {check}:"))
        });
        if !reported {
            problems.push(format!("MISSING {check}: the script did not report it"));
        }
    }
    if !stdout.lines().any(|line| line.ends_with(" failed")) {
        problems.push(format!(
            "the script did not finish (exit status {})",
            report.status
        ));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_jira_client_accepts_fake_jira() {
    let env = tokio::task::block_in_place(python_env);
    let jira = FakeJira::start(FakeJiraOptions {
        tls: true,
        ..FakeJiraOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("fake-jira-ca.pem");
    jira.write_ca_file(&ca_file).unwrap();

    let command = script_command(&env, &jira, &ca_file);
    let started = Instant::now();
    let report = tokio::task::block_in_place(|| run_script(command, &jira));
    eprintln!(
        "jira-python: the client ran for {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut problems = problems(&report);
    if jira.rate_limited_calls() == 0 {
        problems.push("RATE LIMIT: FakeJira refused no call while the limit was set".into());
    }
    let (stdout, stderr) = (&report.stdout, &report.stderr);
    assert!(
        problems.is_empty() && report.success,
        "Python's jira client disagrees with FakeJira:\n{}\n\n--- script stdout ---\n{stdout}\n--- script stderr ---\n{stderr}",
        problems.join("\n"),
    );
    eprintln!("{stdout}");
}
