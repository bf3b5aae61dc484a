#![allow(clippy::unwrap_used)]

use super::*;

const MINIMAL: &str = r#"
[teleport]
addr = "teleport.example.com:3025"
identity = "/var/lib/teleport/plugins/jira/auth_id"

[jira]
url = "https://example.atlassian.net"
username = "bot@example.com"
api_token = "tok"
project = "PROJ"

[http]
https_key_file = "/k.pem"
https_cert_file = "/c.pem"
"#;

fn parse(text: &str) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    Config::parse(text, false)
}

fn error_of(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn with(section_key: &str, replacement: &str) -> String {
    MINIMAL.replace(section_key, replacement)
}

#[test]
fn example_config_printed_by_configure_parses() {
    let (config, warnings) = parse(EXAMPLE_CONFIG).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.teleport.addr, "example.com:3025");
    assert_eq!(
        config.teleport.credentials,
        CredentialSource::IdentityFile {
            path: "/var/lib/teleport/plugins/jira/auth_id".into(),
            refresh: Some(Duration::from_secs(60)),
        }
    );
    assert_eq!(config.jira.issue_type, "Task");
    assert_eq!(config.http.listen_addr, "0.0.0.0:8081".parse().unwrap());
    assert_eq!(config.log.severity, Severity::Info);
}

#[test]
fn defaults_match_the_go_plugin() {
    let text = MINIMAL.replace("addr = \"teleport.example.com:3025\"\n", "");
    let (config, _) = parse(&text).unwrap();
    assert_eq!(config.teleport.addr, "localhost:3025");
    assert_eq!(config.jira.issue_type, "Task");
    assert_eq!(config.http.listen_addr.port(), 8081);
    assert_eq!(config.log.output, LogOutput::Stderr);
    assert_eq!(config.log.format, LogFormat::Text);
}

#[test]
fn auth_server_alias_is_used_with_a_deprecation_warning() {
    let text = with("addr = ", "auth_server = ");
    let (config, warnings) = parse(&text).unwrap();
    assert_eq!(config.teleport.addr, "teleport.example.com:3025");
    assert_eq!(warnings, vec![ConfigWarning::DeprecatedAuthServer]);
}

#[test]
fn addr_wins_over_auth_server_silently() {
    let text = with("[teleport]\n", "[teleport]\nauth_server = \"old:3025\"\n");
    let (config, warnings) = parse(&text).unwrap();
    assert_eq!(config.teleport.addr, "teleport.example.com:3025");
    assert!(warnings.is_empty());
}

#[test]
fn unknown_keys_are_named_in_warnings() {
    let text = format!("{MINIMAL}\n[jira]\n")
        .replace("project = \"PROJ\"", "project = \"PROJ\"\nprojekt = \"X\"");
    let text = text.trim_end_matches("\n[jira]\n").to_owned() + "\n[extra]\nfoo = 1\n";
    let (_, warnings) = parse(&text).unwrap();
    assert!(
        warnings.contains(&ConfigWarning::UnknownKey("jira.projekt".into())),
        "{warnings:?}"
    );
    assert!(
        warnings.contains(&ConfigWarning::UnknownKey("extra".into())),
        "{warnings:?}"
    );
}

#[test]
fn partial_tls_trio_names_provided_and_missing_settings() {
    let text = with(
        "identity = \"/var/lib/teleport/plugins/jira/auth_id\"",
        "client_key = \"/k\"\nroot_cas = \"/cas\"",
    );
    assert_eq!(
        error_of(&text),
        "configuration setting(s) `client_key`, `root_cas` are provided but setting(s) `client_crt` are missing"
    );
}

#[test]
fn identity_and_tls_trio_are_mutually_exclusive() {
    let text = with(
        "[jira]",
        "client_key = \"/k\"\nclient_crt = \"/c\"\nroot_cas = \"/r\"\n[jira]",
    );
    assert_eq!(
        error_of(&text),
        "configuration setting `identity` is mutually exclusive with all the `client_crt`, `client_key` and `root_cas` settings"
    );
}

#[test]
fn tls_trio_is_accepted_as_credentials() {
    let text = with(
        "identity = \"/var/lib/teleport/plugins/jira/auth_id\"",
        "client_key = \"/k\"\nclient_crt = \"/c\"\nroot_cas = \"/r\"",
    );
    let (config, _) = parse(&text).unwrap();
    assert_eq!(
        config.teleport.credentials,
        CredentialSource::KeyPair {
            key: "/k".into(),
            cert: "/c".into(),
            root_cas: "/r".into()
        }
    );
}

#[test]
fn refresh_identity_requires_identity() {
    let text = with(
        "identity = \"/var/lib/teleport/plugins/jira/auth_id\"",
        "refresh_identity = true\nclient_key = \"/k\"\nclient_crt = \"/c\"\nroot_cas = \"/r\"",
    );
    assert_eq!(
        error_of(&text),
        "`refresh_identity` requires that `identity` be set"
    );
}

#[test]
fn refresh_identity_interval_accepts_go_durations_and_nanoseconds() {
    for (value, expected) in [
        ("\"90s\"", 90),
        ("\"1m30s\"", 90),
        ("\"2m\"", 120),
        ("30000000000", 30),
    ] {
        let text = with(
            "identity = \"/var/lib/teleport/plugins/jira/auth_id\"",
            &format!(
                "identity = \"/id\"\nrefresh_identity = true\nrefresh_identity_interval = {value}"
            ),
        );
        let (config, _) = parse(&text).unwrap();
        assert_eq!(
            config.teleport.credentials,
            CredentialSource::IdentityFile {
                path: "/id".into(),
                refresh: Some(Duration::from_secs(expected))
            },
            "{value}"
        );
    }
}

#[test]
fn bad_duration_names_the_value() {
    let text = with(
        "identity = \"/var/lib/teleport/plugins/jira/auth_id\"",
        "identity = \"/id\"\nrefresh_identity_interval = \"soon\"",
    );
    let message = error_of(&text);
    assert!(message.contains("\"soon\""), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn missing_credentials_is_an_error() {
    let text = with("identity = \"/var/lib/teleport/plugins/jira/auth_id\"", "");
    assert!(error_of(&text).starts_with("no credentials configured"));
}

#[test]
fn jira_url_is_required_and_must_be_https() {
    assert_eq!(
        error_of(&with("url = \"https://example.atlassian.net\"", "")),
        "missing required value jira.url"
    );
    let message = error_of(&with(
        "https://example.atlassian.net",
        "http://example.atlassian.net",
    ));
    assert!(
        message.starts_with("parameter jira.url must start with \"https://\""),
        "{message}"
    );
}

#[test]
fn jira_url_trailing_slash_and_path_prefix_are_kept_tidy() {
    let (config, _) = parse(&with(
        "https://example.atlassian.net",
        "https://example.com/jira/",
    ))
    .unwrap();
    assert_eq!(config.jira.url, "https://example.com/jira");
}

#[test]
fn jira_username_and_token_are_required() {
    assert_eq!(
        error_of(&with("username = \"bot@example.com\"", "")),
        "missing required value jira.username"
    );
    assert_eq!(
        error_of(&with("api_token = \"tok\"", "")),
        "missing required value jira.api_token"
    );
}

#[test]
fn api_token_starting_with_slash_is_read_from_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "  secret-token\n").unwrap();
    let (config, _) = parse(&with(
        "api_token = \"tok\"",
        &format!("api_token = {:?}", path),
    ))
    .unwrap();
    assert_eq!(config.jira.api_token.expose(), "secret-token");
    assert!(!format!("{config:?}").contains("secret-token"));
}

#[test]
fn api_token_file_missing_names_the_file() {
    let message = error_of(&with(
        "api_token = \"tok\"",
        "api_token = \"/nonexistent/token\"",
    ));
    assert!(
        message.starts_with("Error reading password from /nonexistent/token"),
        "{message}"
    );
}

#[test]
fn https_files_must_come_in_pairs() {
    assert_eq!(
        error_of(&with("https_cert_file = \"/c.pem\"", "")),
        "https_cert_file is required when https_key_file is specified"
    );
    assert_eq!(
        error_of(&with("https_key_file = \"/k.pem\"", "")),
        "https_key_file is required when https_cert_file is specified"
    );
}

#[test]
fn https_files_are_required_unless_insecure_no_tls() {
    let text = with(
        "https_key_file = \"/k.pem\"\nhttps_cert_file = \"/c.pem\"",
        "",
    );
    assert!(error_of(&text).contains("--insecure-no-tls"));
    let (config, _) = Config::parse(&text, true).unwrap();
    assert!(config.http.tls.is_none());
}

#[test]
fn basic_auth_password_without_user_is_refused() {
    let text = format!("{MINIMAL}\n[http.basic_auth]\npassword = \"p\"\n");
    assert_eq!(
        error_of(&text),
        "basic_auth.user is required when basic_auth.password is specified"
    );
}

#[test]
fn public_addr_credentials_turn_on_basic_auth() {
    let text = with(
        "[http]",
        "[http]\npublic_addr = \"https://jira:s3cret@hooks.example.com\"",
    );
    let (config, _) = parse(&text).unwrap();
    let auth = config.http.basic_auth.unwrap();
    assert_eq!(auth.user, "jira");
    assert_eq!(auth.password.expose(), "s3cret");
}

#[test]
fn credentials_in_both_places_are_refused() {
    let text = with(
        "[http]",
        "[http]\npublic_addr = \"https://a:b@hooks.example.com\"",
    ) + "\n[http.basic_auth]\nuser = \"u\"\npassword = \"p\"\n";
    assert_eq!(
        error_of(&text),
        "passing credentials both in basic_auth section and public_addr parameter is not supported"
    );
}

#[test]
fn public_addr_with_a_foreign_scheme_is_refused() {
    let text = with(
        "[http]",
        "[http]\npublic_addr = \"ftp://hooks.example.com\"",
    );
    assert_eq!(
        error_of(&text),
        "wrong scheme in public_addr parameter: \"ftp\""
    );
}

#[test]
fn listen_addr_accepts_go_forms_and_refuses_garbage() {
    for (value, expected) in [
        (":9000", "0.0.0.0:9000"),
        ("127.0.0.1:1", "127.0.0.1:1"),
        ("[::1]:80", "[::1]:80"),
    ] {
        let text = with("[http]", &format!("[http]\nlisten_addr = {value:?}"));
        let (config, _) = parse(&text).unwrap();
        assert_eq!(config.http.listen_addr, expected.parse().unwrap());
    }
    let message = error_of(&with("[http]", "[http]\nlisten_addr = \"nowhere\""));
    assert!(
        message.starts_with("http.listen_addr \"nowhere\""),
        "{message}"
    );
}

#[test]
fn log_severity_is_case_insensitive_and_validated() {
    for (value, expected) in [
        ("INFO", Severity::Info),
        ("err", Severity::Error),
        ("Warning", Severity::Warn),
        ("debug", Severity::Debug),
    ] {
        let (config, _) = parse(&format!("{MINIMAL}\n[log]\nseverity = {value:?}\n")).unwrap();
        assert_eq!(config.log.severity, expected);
    }
    let message = error_of(&format!("{MINIMAL}\n[log]\nseverity = \"loud\"\n"));
    assert!(
        message.starts_with("unsupported logger severity: \"loud\""),
        "{message}"
    );
}

#[test]
fn log_output_accepts_aliases_and_paths() {
    for (value, expected) in [
        ("stdout", LogOutput::Stdout),
        ("1", LogOutput::Stdout),
        ("error", LogOutput::Stderr),
        (
            "/var/log/teleport-jira.log",
            LogOutput::File("/var/log/teleport-jira.log".into()),
        ),
    ] {
        let (config, _) = parse(&format!("{MINIMAL}\n[log]\noutput = {value:?}\n")).unwrap();
        assert_eq!(config.log.output, expected);
    }
}

#[test]
fn toml_syntax_errors_are_one_line_with_a_position() {
    let message = error_of("[jira\nurl = 1");
    assert!(message.contains("line 1"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn wrong_value_type_is_one_line_with_a_position() {
    let message = error_of(&with(
        "[teleport]",
        "[teleport]\nrefresh_identity = \"yes\"",
    ));
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("teleport.refresh_identity: "), "{message}");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let text = MINIMAL.replace("api_token = \"tok\"", "api_token = \"very-secret-token\"")
        + "\n[http.basic_auth]\nuser = \"u\"\npassword = \"very-secret-password\"\n";
    let (config, _) = parse(&text).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("very-secret-token"), "{debug}");
    assert!(!debug.contains("very-secret-password"), "{debug}");
}

#[test]
fn tuning_keys_have_defaults_and_are_validated() {
    let (config, warnings) = parse(MINIMAL).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(config.reconcile.scan_interval, Duration::from_secs(300));
    assert_eq!(config.reconcile.workers, 384);
    assert_eq!(config.jira.max_concurrent_calls, 256);
    assert_eq!(config.jira.max_calls_per_second, None);

    let text = format!("{MINIMAL}\n[reconcile]\nscan_interval = \"20s\"\nworkers = 8\n").replace(
        "project = \"PROJ\"",
        "project = \"PROJ\"\nmax_concurrent_calls = 4\nmax_calls_per_second = 10.5",
    );
    let (config, warnings) = parse(&text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.reconcile.scan_interval, Duration::from_secs(20));
    assert_eq!(config.reconcile.workers, 8);
    assert_eq!(config.jira.max_concurrent_calls, 4);
    assert_eq!(config.jira.max_calls_per_second, Some(10.5));

    let message = error_of(&format!("{MINIMAL}\n[reconcile]\nworkers = 0\n"));
    assert_eq!(message, "reconcile.workers must be at least 1");
    let message = error_of(&MINIMAL.replace(
        "project = \"PROJ\"",
        "project = \"PROJ\"\nmax_calls_per_second = -1",
    ));
    assert!(
        message.starts_with("jira.max_calls_per_second must be a positive number"),
        "{message}"
    );
}

#[test]
fn polling_only_needs_no_webhook_certificate_and_scans_more_often() {
    let text = with(
        "https_key_file = \"/k.pem\"\nhttps_cert_file = \"/c.pem\"",
        "disable_webhook = true",
    );
    let (config, _) = parse(&text).unwrap();
    assert!(config.http.disable_webhook);
    assert!(config.http.tls.is_none());
    assert_eq!(config.reconcile.scan_interval, Duration::from_secs(30));
}

#[test]
fn metrics_listener_is_off_unless_asked_for_and_its_address_is_checked() {
    let (config, _) = parse(MINIMAL).unwrap();
    assert_eq!(config.metrics.listen_addr, None);
    let (config, warnings) =
        parse(&format!("{MINIMAL}\n[metrics]\nlisten_addr = \":9090\"\n")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        config.metrics.listen_addr,
        Some("0.0.0.0:9090".parse().unwrap())
    );
    let err = error_of(&format!("{MINIMAL}\n[metrics]\nlisten_addr = \"9090\"\n"));
    assert!(
        err.starts_with("metrics.listen_addr \"9090\" is not a valid"),
        "{err}"
    );
    let err = error_of(&format!("{MINIMAL}\n[metrics]\nlisten_addr = \":8081\"\n"));
    assert!(err.contains("must differ from http.listen_addr"), "{err}");
}

#[test]
fn access_monitoring_rules_are_off_by_default_and_name_jira() {
    let (config, _) = parse(MINIMAL).unwrap();
    assert!(!config.access_monitoring_rules.enabled);
    assert_eq!(config.access_monitoring_rules.notification_name, "jira");
    let text = format!(
        "{MINIMAL}\n[access_monitoring_rules]\nenabled = true\nnotification_name = \"jira-prod\"\n"
    );
    let (config, warnings) = parse(&text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(config.access_monitoring_rules.enabled);
    assert_eq!(
        config.access_monitoring_rules.notification_name,
        "jira-prod"
    );
    let err = error_of(&format!(
        "{MINIMAL}\n[access_monitoring_rules]\nnotification_name = \" \"\n"
    ));
    assert!(
        err.starts_with("access_monitoring_rules.notification_name must not be empty"),
        "{err}"
    );
    let err = error_of(&format!(
        "{MINIMAL}\n[access_monitoring_rules]\nenabled = \"yes\"\n"
    ));
    assert!(
        err.contains("access_monitoring_rules.enabled: invalid type"),
        "{err}"
    );
}

#[test]
fn no_secret_shows_when_any_config_struct_is_formatted() {
    let secrets = ["s3cret-token", "s3cret-hook", "s3cret-pass"];
    let text = with(
        "[http]",
        "[http]\npublic_addr = \"https://jira:s3cret-pass@hooks.example.com/x\"\nwebhook_secret = \"s3cret-hook\"",
    )
    .replace("api_token = \"tok\"", "api_token = \"s3cret-token\"");
    let (config, _) = parse(&text).unwrap();
    assert_eq!(config.jira.api_token.expose(), "s3cret-token");
    let shown = [
        format!("{config:?}"),
        format!("{:?}", config.jira),
        format!("{:?}", config.http),
        format!("{:?}", config.http.basic_auth),
        format!("{:?}", config.teleport),
    ];
    for text in shown {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} shows in {text}");
        }
    }
    assert_eq!(
        config.http.public_addr.as_deref(),
        Some("https://hooks.example.com/x")
    );
}

#[test]
fn the_basic_auth_password_can_come_from_a_file_but_not_from_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "s3cret-pass\n").unwrap();
    let from_file = format!(
        "{}\n[http.basic_auth]\nuser = \"jira\"\npassword_file = {:?}",
        with("[http]", "[http]"),
        file.display().to_string()
    );
    let (config, _) = parse(&from_file).unwrap();
    let auth = config.http.basic_auth.unwrap();
    assert_eq!(auth.password.expose(), "s3cret-pass");
    assert_eq!(
        config.http.basic_auth_password_file.as_deref(),
        Some(file.as_path())
    );

    let both = format!("{from_file}\npassword = \"inline\"");
    let err = error_of(&both);
    assert!(err.contains("password_file"), "{err}");
}

#[test]
fn jsm_oncall_is_off_by_default_and_borrows_the_jira_credentials() {
    let (config, _) = parse(MINIMAL).unwrap();
    let oncall = &config.jsm_oncall;
    assert!(!oncall.enabled);
    assert_eq!(oncall.api_url, "https://api.atlassian.com");
    assert_eq!(oncall.cloud_id, None);
    assert_eq!(oncall.email, "bot@example.com");
    assert_eq!(oncall.api_token.expose(), "tok");
    assert_eq!(oncall.schedules_annotation, "teleport.dev/schedules");
    assert!(oncall.default_schedules.is_empty());
    assert_eq!(oncall.account_id_trait, "jira_account_id");
    assert!(!oncall.email_lookup);
    assert_eq!(oncall.integration, "jsm-oncall");
}

#[test]
fn jsm_oncall_keys_are_read_as_written() {
    let text = format!(
        "{MINIMAL}\n[jsm_oncall]\nenabled = true\napi_url = \"https://ops.example.com/\"\ncloud_id = \"c-1\"\nemail = \"ops@example.com\"\napi_token = \"ops-token\"\nschedules_annotation = \"example.com/oncall\"\ndefault_schedules = [\"s-1\", \" \", \"s-2\"]\naccount_id_trait = \"atlassian_id\"\nemail_lookup = true\nintegration = \"oncall\"\n"
    );
    let (config, warnings) = parse(&text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let oncall = &config.jsm_oncall;
    assert!(oncall.enabled);
    assert_eq!(oncall.api_url, "https://ops.example.com");
    assert_eq!(oncall.cloud_id.as_deref(), Some("c-1"));
    assert_eq!(oncall.email, "ops@example.com");
    assert_eq!(oncall.api_token.expose(), "ops-token");
    assert_eq!(oncall.schedules_annotation, "example.com/oncall");
    assert_eq!(oncall.default_schedules, ["s-1", "s-2"]);
    assert_eq!(oncall.account_id_trait, "atlassian_id");
    assert!(oncall.email_lookup);
    assert_eq!(oncall.integration, "oncall");
}

#[test]
fn jsm_oncall_bad_values_name_the_key() {
    let err = error_of(&format!(
        "{MINIMAL}\n[jsm_oncall]\napi_url = \"http://api.atlassian.com\"\n"
    ));
    assert!(
        err.starts_with("jsm_oncall.api_url must start with"),
        "{err}"
    );
    let err = error_of(&format!(
        "{MINIMAL}\n[jsm_oncall]\naccount_id_trait = \"\"\n"
    ));
    assert!(
        err.starts_with("jsm_oncall.account_id_trait must not be empty"),
        "{err}"
    );
    let err = error_of(&format!(
        "{MINIMAL}\n[jsm_oncall]\nenabled = true\napi_token = \"/nonexistent/jsm-token\"\n"
    ));
    assert!(err.starts_with("jsm_oncall.api_token: "), "{err}");
    let err = error_of(&format!(
        "{MINIMAL}\n[jsm_oncall]\ndefault_schedules = \"s-1\"\n"
    ));
    assert!(
        err.contains("jsm_oncall.default_schedules: invalid type"),
        "{err}"
    );
}

#[test]
fn people_and_audit_default_to_nobody_on_the_ticket_and_no_record() {
    let (config, _) = parse(MINIMAL).unwrap();
    assert_eq!(config.jira.people, PeopleConfig::default());
    assert!(!config.jira.people.enabled());
    assert_eq!(config.jira.people.account_id_trait, "jira_account_id");
    assert_eq!(config.audit, AuditConfig::default());
}

#[test]
fn people_modes_and_audit_keys_are_read() {
    let text = format!(
        "{MINIMAL}
[jira.people]
account_id_trait = \"jira_user\"
email_lookup = true
requester = \"Reporter\"
suggested_reviewers = \"mention\"
mention_on_resolution = true
remind_after = \"4h\"

[audit]
trail_in_ticket = true
jsonl_path = \"/var/log/teleport-jira/audit.jsonl\"
"
    );
    let (config, warnings) = parse(&text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let people = &config.jira.people;
    assert_eq!(people.account_id_trait, "jira_user");
    assert!(people.email_lookup);
    assert_eq!(people.requester, RequesterAs::Reporter);
    assert_eq!(people.suggested_reviewers, ReviewersAs::Mention);
    assert!(people.mention_on_resolution);
    assert_eq!(people.remind_after, Some(Duration::from_secs(4 * 3600)));
    assert!(config.audit.trail_in_ticket);
    assert_eq!(
        config.audit.jsonl_path.as_deref(),
        Some(Path::new("/var/log/teleport-jira/audit.jsonl"))
    );
}

#[test]
fn a_remind_after_of_zero_means_no_reminder() {
    let text = format!("{MINIMAL}\n[jira.people]\nremind_after = \"0\"\n");
    assert_eq!(parse(&text).unwrap().0.jira.people.remind_after, None);
}

#[test]
fn unknown_people_modes_are_refused_naming_the_key() {
    let requester = error_of(&format!(
        "{MINIMAL}\n[jira.people]\nrequester = \"assignee\"\n"
    ));
    assert!(requester.contains("jira.people.requester"), "{requester}");
    let reviewers = error_of(&format!(
        "{MINIMAL}\n[jira.people]\nsuggested_reviewers = \"reporter\"\n"
    ));
    assert!(
        reviewers.contains("jira.people.suggested_reviewers"),
        "{reviewers}"
    );
    let blank = error_of(&format!(
        "{MINIMAL}\n[jira.people]\naccount_id_trait = \" \"\n"
    ));
    assert!(blank.contains("account_id_trait"), "{blank}");
}
