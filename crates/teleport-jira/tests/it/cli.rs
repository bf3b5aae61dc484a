//! The command line as an operator of the Go plugin uses it.

#![allow(clippy::unwrap_used)]

use crate::support::*;

#[test]
fn configure_prints_an_example_that_start_accepts_as_config() {
    let (status, stdout, _) = run_binary(&["configure"]);
    assert!(status.success());
    assert!(
        stdout.contains("[teleport]")
            && stdout.contains("[jira]")
            && stdout.contains("[http]")
            && stdout.contains("[log]")
    );
    assert!(stdout.contains("# "), "the example is commented");
}

#[test]
fn version_prints_one_line_naming_the_binary() {
    let (status, stdout, _) = run_binary(&["version"]);
    assert!(status.success());
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("teleport-jira v"), "{stdout}");
    assert!(stdout.contains(" rustc"), "{stdout}");
}

#[test]
fn start_with_the_example_config_fails_with_one_line_naming_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("x.toml");
    let (_, example, _) = run_binary(&["configure"]);
    std::fs::write(&config, example).unwrap();
    let (status, _, stderr) = run_binary(&["start", "-c", config.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("/var/lib/teleport/plugins/jira/auth_id"),
        "{stderr}"
    );
}

#[test]
fn start_without_a_config_file_names_it() {
    let (status, _, stderr) = run_binary(&["start", "--config", "/nonexistent/teleport-jira.toml"]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("/nonexistent/teleport-jira.toml"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn start_with_an_invalid_value_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[teleport]\nidentity = \"/id\"\n[jira]\nurl = \"http://jira\"\nusername = \"u\"\napi_token = \"t\"\n").unwrap();
    let (status, _, stderr) =
        run_binary(&["start", "-c", config.to_str().unwrap(), "--insecure-no-tls"]);
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("jira.url must start with \"https://\""),
        "{stderr}"
    );
}

#[test]
fn unknown_flags_fail_with_exit_code_1() {
    let (status, _, stderr) = run_binary(&["start", "--bogus"]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("--bogus"), "{stderr}");
}

#[test]
fn default_config_path_is_the_go_plugins() {
    let (_, stdout, _) = run_binary(&["start", "--help"]);
    assert!(stdout.contains("/etc/teleport-jira.toml"), "{stdout}");
}

async fn start_fails(sandbox: &Sandbox) -> String {
    let mut plugin = Plugin::spawn(
        &sandbox.config_path,
        &sandbox.path("jira-ca.pem"),
        &["--insecure-no-tls"],
    );
    let status = plugin.wait().await;
    assert_eq!(status.code(), Some(1), "{}", plugin.log());
    let log = plugin.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("teleport-jira: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    errors[0].to_owned()
}

#[tokio::test]
async fn start_fails_with_one_line_when_the_jira_token_is_wrong() {
    let sandbox = Sandbox::new().await;
    let config = std::fs::read_to_string(&sandbox.config_path)
        .unwrap()
        .replace("api_token = \"xyz\"", "api_token = \"wrong\"");
    std::fs::write(&sandbox.config_path, config).unwrap();
    let error = start_fails(&sandbox).await;
    assert!(error.contains("api health check failed"), "{error}");
    assert!(error.contains("credentials"), "{error}");
}

#[tokio::test]
async fn start_fails_with_one_line_when_the_jira_user_lacks_a_permission() {
    use testkit::jira::Permission;
    let sandbox = Sandbox::new().await;
    let plugin = sandbox.jira.plugin_user();
    sandbox
        .jira
        .set_user_permissions(
            &plugin.account_id,
            [
                Permission::BrowseProjects,
                Permission::CreateIssues,
                Permission::AddComments,
            ],
        )
        .unwrap();
    let error = start_fails(&sandbox).await;
    assert!(
        error.contains("plugin jira user does not have TRANSITION_ISSUES permission"),
        "{error}"
    );
}

#[tokio::test]
async fn start_fails_with_one_line_when_the_project_does_not_exist() {
    let sandbox = Sandbox::new().await;
    let config = std::fs::read_to_string(&sandbox.config_path)
        .unwrap()
        .replace("project = \"PROJ\"", "project = \"NOPE\"");
    std::fs::write(&sandbox.config_path, config).unwrap();
    let error = start_fails(&sandbox).await;
    assert!(error.contains("api health check failed"), "{error}");
}

#[tokio::test]
async fn start_fails_at_once_with_one_line_when_jiras_certificate_is_not_trusted() {
    let sandbox = Sandbox::new().await;
    // The plugin trusts some other CA, not the one that issued Jira's certificate.
    let stranger = testkit::pki::CertAuthority::new("Some Other CA", "Elsewhere").unwrap();
    std::fs::write(sandbox.path("jira-ca.pem"), stranger.cert_pem()).unwrap();
    let started = std::time::Instant::now();
    let error = start_fails(&sandbox).await;
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains("not trusted"), "{error}");
    assert!(error.contains("SSL_CERT_FILE"), "the fix is named: {error}");
    let url = sandbox.jira.url();
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/']).next())
        .unwrap();
    assert!(error.contains(host), "the host is named: {error}");
    // Not the 60 s of patience an outage gets; generous for a loaded machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(45),
        "start-up waited {:?} for a certificate that cannot become trusted",
        started.elapsed()
    );
}

#[tokio::test]
async fn start_fails_at_once_with_one_line_when_teleports_certificate_is_not_trusted() {
    let sandbox = Sandbox::new().await;
    // The identity's key and certificate, but another cluster's CA as the roots to trust.
    let path = sandbox.path("auth_id");
    let identity = std::fs::read_to_string(&path).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    let after_certificate = identity.find(end).unwrap() + end.len();
    let stranger = testkit::pki::CertAuthority::teleport("elsewhere.example.com").unwrap();
    std::fs::write(
        &path,
        format!("{}{}", &identity[..after_certificate], stranger.cert_pem()),
    )
    .unwrap();
    let error = start_fails(&sandbox).await;
    assert!(
        error.contains("Teleport's certificate") && error.contains("not trusted"),
        "{error}"
    );
    assert!(error.contains("teleport.addr"), "the fix is named: {error}");
}

#[tokio::test]
async fn start_fails_with_one_line_when_teleport_is_unreachable() {
    let sandbox = Sandbox::new().await;
    sandbox.teleport.stop().await;
    let error = start_fails(&sandbox).await;
    assert!(error.contains("cannot reach Teleport"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// `configure` shows every key

/// The keys of the Go plugin's config: the only ones `configure` sets (this plugin's own keys are
/// shown commented out, so the printed file means what it means to the Go plugin).
const GO_PLUGIN_KEYS: &[&str] = &[
    "teleport.addr",
    "teleport.auth_server",
    "teleport.identity",
    "teleport.refresh_identity",
    "teleport.refresh_identity_interval",
    "teleport.client_key",
    "teleport.client_crt",
    "teleport.root_cas",
    "jira.url",
    "jira.username",
    "jira.api_token",
    "jira.project",
    "jira.issue_type",
    "http.listen_addr",
    "http.public_addr",
    "http.https_key_file",
    "http.https_cert_file",
    "http.basic_auth.user",
    "http.basic_auth.password",
    "http.tls.verify_client_cert",
    "log.output",
    "log.severity",
];
/// Keys `configure` shows at an example value, having no default (or, for basic auth, being off
/// by default).
const EXAMPLE_ONLY_KEYS: &[&str] = &[
    "http.webhook_secret",
    "http.basic_auth.user",
    "http.basic_auth.password",
    "http.basic_auth.password_file",
    "jira.max_calls_per_second",
    "metrics.listen_addr",
];
/// `--format=tls` credentials: the alternative to `identity` that `configure` shows.
const KEY_PAIR_KEYS: &[&str] = &[
    "teleport.client_key",
    "teleport.client_crt",
    "teleport.root_cas",
];

/// Every key path the loader reads, from the serde mirror of the file (`struct Raw*` in
/// `src/config/`): a field of a `Raw*` type is a table, any other field a key (maps such as
/// `jira.users` are keys whose value is a table).
fn loader_keys() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    let mut source = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            source.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    assert!(
        !source.contains("serde(rename") && !source.contains("serde(alias"),
        "a renamed field in src/config: teach loader_keys() about serde renames"
    );
    let mut structs = std::collections::HashMap::new();
    for (start, _) in source.match_indices("struct Raw") {
        let rest = &source[start + "struct ".len()..];
        let name = rest.split([' ', '{']).next().unwrap();
        let body = &rest[rest.find('{').unwrap() + 1..rest.find("\n}").unwrap()];
        let fields: Vec<(String, String)> = body
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub "))
            .filter_map(|field| field.split_once(": "))
            .map(|(name, ty)| (name.to_owned(), ty.trim_end_matches(',').to_owned()))
            .collect();
        structs.insert(name.to_owned(), fields);
    }
    fn walk(
        structs: &std::collections::HashMap<String, Vec<(String, String)>>,
        ty: &str,
        prefix: &str,
        into: &mut Vec<String>,
    ) {
        for (name, field_ty) in &structs[ty] {
            let path = format!("{prefix}{name}");
            if structs.contains_key(field_ty) {
                walk(structs, field_ty, &format!("{path}."), into);
            } else {
                into.push(path);
            }
        }
    }
    let mut keys = Vec::new();
    walk(&structs, "RawConfig", "", &mut keys);
    keys
}

/// What `configure` prints with every commented-out key line and table header uncommented; the
/// lines that describe them stay comments.
fn configure_uncommented() -> String {
    let (status, example, _) = run_binary(&["configure"]);
    assert!(status.success());
    let mut text = String::new();
    for line in example.lines() {
        let uncommented = line.strip_prefix("# ").filter(|rest| {
            let header = rest.starts_with('[') && rest.ends_with(']') && !rest.contains(' ');
            let key = rest
                .split_once(" = ")
                .is_some_and(|(key, _)| !key.is_empty() && !key.contains(' '));
            header || key
        });
        text.push_str(uncommented.unwrap_or(line));
        text.push('\n');
    }
    text
}

/// The key paths set in a config, tables descended into (but not map-valued keys' contents).
fn key_paths(table: &toml::Table, prefix: &str, into: &mut Vec<String>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value {
            toml::Value::Table(inner) if !matches!(path.as_str(), "jira.users" | "jira.fields") => {
                key_paths(inner, &format!("{path}."), into);
            }
            _ => into.push(path),
        }
    }
}

fn without(table: &mut toml::Table, paths: &[&str]) {
    for path in paths {
        let (section, key) = path.rsplit_once('.').unwrap();
        let mut current = &mut *table;
        for segment in section.split('.') {
            current = current.get_mut(segment).unwrap().as_table_mut().unwrap();
        }
        current.remove(key);
    }
}

#[test]
fn configure_shows_every_key_the_loader_reads() {
    let keys = loader_keys();
    assert!(
        keys.len() >= 45,
        "only {} keys read from src/config: {keys:?}",
        keys.len()
    );
    let shown: toml::Table = configure_uncommented().parse().unwrap();
    let mut paths = Vec::new();
    key_paths(&shown, "", &mut paths);
    let missing: Vec<&String> = keys.iter().filter(|k| !paths.contains(k)).collect();
    assert!(missing.is_empty(), "`configure` does not show {missing:?}");
    let unknown: Vec<&String> = paths.iter().filter(|p| !keys.contains(p)).collect();
    assert!(
        unknown.is_empty(),
        "`configure` shows keys the loader does not read: {unknown:?}"
    );
}

#[test]
fn configure_sets_only_the_go_plugins_keys_and_comments_out_the_others_at_their_defaults() {
    let (_, printed, _) = run_binary(&["configure"]);
    let mut set = Vec::new();
    key_paths(&printed.parse().unwrap(), "", &mut set);
    let added: Vec<&String> = set
        .iter()
        .filter(|k| !GO_PLUGIN_KEYS.contains(&k.as_str()))
        .collect();
    assert!(
        added.is_empty(),
        "`configure` sets keys the Go plugin does not have: {added:?}"
    );

    // Uncommented (with the identity file, not its key-pair alternative), the keys shown at
    // their defaults change nothing; the example-only ones are left out.
    let as_printed = teleport_jira::config::Config::parse(&printed, false).unwrap();
    let mut uncommented: toml::Table = configure_uncommented().parse().unwrap();
    without(&mut uncommented, KEY_PAIR_KEYS);
    without(&mut uncommented, EXAMPLE_ONLY_KEYS);
    let text = toml::to_string(&uncommented).unwrap();
    let (defaults, warnings) = teleport_jira::config::Config::parse(&text, false)
        .unwrap_or_else(|err| panic!("uncommented, `configure` does not load: {err}\n{text}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(format!("{:?}", as_printed.0), format!("{defaults:?}"));
}

#[test]
fn configure_uncommented_loads_with_either_kind_of_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("webhook_secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let text = configure_uncommented().replace(
        "\"/var/lib/teleport/plugins/jira/webhook_secret\"",
        &format!("{:?}", secret.display().to_string()),
    );
    let identity = [
        "teleport.identity",
        "teleport.refresh_identity",
        "teleport.refresh_identity_interval",
    ];
    for drop in [KEY_PAIR_KEYS, &identity] {
        let mut table: toml::Table = text.parse().unwrap();
        without(&mut table, drop);
        // The password given twice (inline and as a file) is refused: keep the inline one.
        without(&mut table, &["http.basic_auth.password_file"]);
        let text = toml::to_string(&table).unwrap();
        match teleport_jira::config::Config::parse(&text, false) {
            Ok((_, warnings)) => assert!(warnings.is_empty(), "{warnings:?}"),
            Err(err) => panic!("without {drop:?}, uncommented `configure` does not load: {err}"),
        }
    }
}

#[test]
fn configure_starts_http_with_the_webhook_secret_and_how_to_set_it_in_jira() {
    let (_, printed, _) = run_binary(&["configure"]);
    let http = printed.split_once("\n[http]\n").unwrap().1;
    let before_key: String = http
        .lines()
        .take_while(|line| !line.contains(" = "))
        .collect::<Vec<_>>()
        .join("\n");
    let first_key = http.lines().find(|line| line.contains(" = ")).unwrap();
    assert!(first_key.starts_with("# webhook_secret = "), "{first_key}");
    for needle in ["\"Secret\"", "X-Hub-Signature", "HMAC-SHA256"] {
        assert!(before_key.contains(needle), "no {needle} in:\n{before_key}");
    }
}
