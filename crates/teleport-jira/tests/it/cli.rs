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
async fn start_fails_with_one_line_when_teleport_is_unreachable() {
    let sandbox = Sandbox::new().await;
    sandbox.teleport.stop().await;
    let error = start_fails(&sandbox).await;
    assert!(error.contains("cannot reach Teleport"), "{error}");
}
