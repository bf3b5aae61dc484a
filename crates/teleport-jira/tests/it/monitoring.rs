//! The monitoring shipped in `deploy/monitoring/` held to the plugin, by Prometheus' own `promtool`:
//! it accepts what a running plugin serves at `/metrics`, every series the alert rules and the
//! dashboard read is one the plugin serves (and every series it serves is on the dashboard), and
//! every dashboard query parses as PromQL. `make monitoring-check` runs these tests, and promtool's
//! checks and unit tests of the rules themselves.
//!
//! `/metrics` answers in the OpenMetrics text format (what Prometheus asks for when it scrapes),
//! but `promtool check metrics` reads the older Prometheus text format, which differs in one way
//! that matters here: an OpenMetrics counter family `x` has the sample `x_total`, where the
//! Prometheus format names the family after its sample. [`as_prometheus_text`] renames counter
//! families so, as Prometheus itself does on ingestion, and changes nothing else: anything else
//! promtool would misread is left for it to complain about.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use teleport_proto::types::RequestState;

use crate::support::{JIRA_REVIEWER, Sandbox, SandboxOptions, eventually, free_port};

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/monitoring");
const RULES: &str = "teleport-jira.rules.yml";
const DASHBOARD: &str = "teleport-jira.dashboard.json";

/// Runs `promtool ARGS` with `stdin`, returning whether it succeeded and what it printed.
fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = match Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "promtool is not installed: `make test` (or `make monitoring-check`) installs it"
            )
        }
        Err(err) => panic!("promtool does not start: {err}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

/// OpenMetrics text as the Prometheus text format: counter families take their samples' name
/// (`x` → `x_total`) and the closing `# EOF` goes; see the module's comment.
fn as_prometheus_text(openmetrics: &str) -> String {
    let body = openmetrics
        .strip_suffix("# EOF\n")
        .unwrap_or_else(|| panic!("the scrape does not end with # EOF:\n{openmetrics}"));
    let counters: BTreeSet<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::new();
    for line in body.lines() {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        text.push_str(renamed.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

/// Metric families in Prometheus text: the names in `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Every `teleport_jira_...` name in `text`, each reduced to its family (histogram suffixes off).
fn series_named_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (start, _) in text.match_indices("teleport_jira_") {
        let name: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        names.insert(family.to_owned());
    }
    names
}

fn read_monitoring(name: &str) -> String {
    let path = Path::new(MONITORING).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every PromQL query of the dashboard (each target's `expr`, in rows too).
fn dashboard_queries() -> Vec<String> {
    fn walk(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(expr)) = map.get("expr") {
                    into.push(expr.clone());
                }
                map.values().for_each(|v| walk(v, into));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, into)),
            _ => {}
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(&read_monitoring(DASHBOARD))
        .unwrap_or_else(|err| panic!("{DASHBOARD} is not JSON: {err}"));
    let mut queries = Vec::new();
    walk(&dashboard, &mut queries);
    assert!(queries.len() >= 15, "only {} queries", queries.len());
    queries
}

/// A plugin that has created two issues, applied a decision from Jira, mirrored one from
/// Teleport, and met a Jira and a Teleport failure on the way: every family has a sample.
async fn a_plugin_that_has_worked() -> (Sandbox, String) {
    let port = free_port();
    let mut sandbox = Sandbox::with(SandboxOptions {
        extra_config: format!("\n[metrics]\nlisten_addr = \"127.0.0.1:{port}\"\n"),
        ..SandboxOptions::default()
    })
    .await;
    sandbox.start_plugin().await;
    sandbox.jira.faults().fail_next_matching("/issue", 1, 503);
    sandbox
        .teleport
        .fail_next("GetPluginData", tonic::Code::Unavailable, 1);
    let approved = sandbox.create_request("monitoring");
    let issue = sandbox.issue_of(&approved).await;
    sandbox
        .jira
        .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
        .unwrap();
    sandbox
        .wait_for_state(&approved, RequestState::Approved)
        .await;
    let denied = sandbox.create_request("monitoring");
    let denied_issue = sandbox.issue_of(&denied).await;
    sandbox
        .teleport
        .set_state_as("admin", &denied, RequestState::Denied, "no", "")
        .unwrap();
    sandbox.wait_for_status(&denied_issue.id, "Denied").await;
    (sandbox, format!("http://127.0.0.1:{port}/metrics"))
}

#[tokio::test]
async fn monitoring_promtool_accepts_the_scrape_and_the_rules_and_dashboard_read_served_series() {
    let (sandbox, url) = a_plugin_that_has_worked().await;
    let scrape = || async { reqwest::get(&url).await.unwrap().text().await.unwrap() };
    let settled = eventually(|| async {
        scrape()
            .await
            .contains("teleport_jira_issue_transitions_total{status=\"Denied\"} 1")
    })
    .await;
    assert!(settled, "no transition counted; log:\n{}", sandbox.log());
    let text = as_prometheus_text(&scrape().await);

    let (ok, printed) = promtool(&["check", "metrics"], &text);
    assert!(
        ok && printed.trim().is_empty(),
        "promtool check metrics refuses the scrape:\n{printed}\nscrape (as Prometheus text):\n{text}"
    );

    let served = families(&text);
    assert!(served.len() >= 18, "{served:?}");
    let dashboard = series_named_in(&dashboard_queries().join("\n"));
    for (what, named) in [
        (RULES, series_named_in(&read_monitoring(RULES))),
        (DASHBOARD, dashboard.clone()),
    ] {
        let unknown: Vec<&String> = named.difference(&served).collect();
        assert!(
            unknown.is_empty(),
            "{what} reads series the plugin does not serve: {unknown:?}\nserved: {served:?}"
        );
    }
    let missing: Vec<&String> = served.difference(&dashboard).collect();
    assert!(
        missing.is_empty(),
        "the dashboard shows no panel for {missing:?}"
    );
}

#[test]
fn monitoring_dashboard_queries_parse_as_promql() {
    // promtool parses PromQL in rule files: each query becomes a recording rule, with Grafana's
    // variables replaced by values of their kind.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (index, query) in dashboard_queries().iter().enumerate() {
        let query = query
            .replace("$__rate_interval", "5m")
            .replace("$job", "teleport-jira")
            .replace("$instance", "a:9090");
        assert!(!query.contains('$'), "an unknown variable in {query}");
        let quoted = serde_json::to_string(&query).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query_{index}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let (ok, printed) = promtool(&["check", "rules", file.to_str().unwrap()], "");
    assert!(
        ok,
        "promtool refuses a dashboard query:\n{printed}\n{rules}"
    );
}

#[test]
fn monitoring_the_conversion_for_promtool_renames_counter_families_only() {
    let openmetrics = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total 1\n\
                       # HELP c Level.\n# TYPE c gauge\nc 2\n# EOF\n";
    assert_eq!(
        as_prometheus_text(openmetrics),
        "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total 1\n\
         # HELP c Level.\n# TYPE c gauge\nc 2\n"
    );
}
