//! The operator guide (`docs/*.md`) held to the product: its config snippets load, the keys it names
//! exist, its `teleport-jira` commands run against the fakes as the guide says, and the commands it
//! cannot run here are marked as such.
//!
//! How fenced blocks are read:
//! - ```` ```toml ````: merged into a minimal valid config and loaded by the real loader, which must
//!   accept it without any warning (an unknown key is a warning).
//! - ```` ```sh ```` / ```` ```console ```` (no tag): every command is run here. `teleport-jira`
//!   runs the built binary against the sandbox (FakeTeleport, HTTPS FakeJira, HTTPS webhook), with
//!   `/etc/teleport-jira.toml` standing for the sandbox's config file; `start` must reach
//!   "Plugin is ready" and then exit 0 on SIGTERM (or run in the background with `&`);
//!   `kill -<SIG> $!` signals that background process; `curl` is performed against the plugin's
//!   listeners (`teleport-jira.example.com:8081` is the webhook listener, `127.0.0.1:9090` the
//!   metrics listener). Any other program fails the test.
//! - ```` ```sh external ````: other tools (tctl, tbot, systemctl, helm, docker, ...). Not run; each
//!   command's program must be one of [`EXTERNAL_TOOLS`], and every `teleport-jira` invocation in
//!   it must be accepted by the binary's argument parser.
//! - ```` ```text check-output ````: a sample of `teleport-jira check`; every check it names must
//!   appear in the real output.
//! - ```` ```yaml helm-values ````: every key path must exist in the chart's `values.yaml`.
//!
//! In prose, config keys written as `` `[section] key` `` or `` `section.key` `` (and the key
//! tables of configuration.md) must exist in the loader; under a Helm heading, dotted names are
//! chart values and must exist in `values.yaml`. Relative links must point at existing pages and
//! headings, and repository paths (`deploy/...`) at existing files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use teleport_jira::config::{Config, ConfigWarning};

use crate::support::*;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// Stands for the sandbox's config file in runnable commands.
const DOC_CONFIG: &str = "/etc/teleport-jira.toml";
/// The webhook listener and the metrics listener as the guide writes them.
const DOC_WEBHOOK_AUTHORITY: &str = "teleport-jira.example.com:8081";
const DOC_METRICS_AUTHORITY: &str = "127.0.0.1:9090";
/// Programs the guide may show in `sh external` blocks.
const EXTERNAL_TOOLS: &[&str] = &[
    "tctl",
    "tbot",
    "tsh",
    "systemctl",
    "systemd-sysusers",
    "journalctl",
    "make",
    "docker",
    "podman",
    "kubectl",
    "helm",
    "openssl",
    "install",
    "chmod",
    "chown",
    "curl",
    "$EDITOR",
    "teleport-jira",
];
const CONFIG_SECTIONS: &[&str] = &["teleport", "jira", "http", "log", "reconcile", "metrics"];
const SUBCOMMANDS: &[&str] = &["configure", "version", "check", "start", "demo"];

// ---------------------------------------------------------------------------------------------
// Reading the guide

struct Page {
    name: String,
    text: String,
}

#[derive(Debug)]
struct Block {
    page: String,
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    tags: Vec<String>,
    text: String,
}

impl Block {
    fn at(&self) -> String {
        format!("docs/{}:{}", self.page, self.line)
    }

    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "console" | "shell" | "bash")
    }
}

fn pages() -> Vec<Page> {
    let dir = Path::new(REPO).join("docs");
    let mut pages: Vec<Page> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| Page {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            text: std::fs::read_to_string(&path).unwrap(),
        })
        .collect();
    pages.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        pages.iter().any(|p| p.name == "README.md"),
        "docs/README.md (the index) is missing"
    );
    pages
}

/// The fenced blocks of a page, with their indentation (blocks inside list items) removed.
fn blocks_of(page: &Page) -> Vec<Block> {
    let mut blocks = Vec::new();
    // The block being read, and the indentation of its opening fence.
    let mut open: Option<(Block, usize)> = None;
    for (index, line) in page.text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut words = info.split_whitespace().map(str::to_owned);
                    let block = Block {
                        page: page.name.clone(),
                        line: index + 1,
                        lang: words.next().unwrap_or_default(),
                        tags: words.collect(),
                        text: String::new(),
                    };
                    open = Some((block, indent));
                }
            }
            Some((mut block, _)) if trimmed == "```" => {
                if block.text.ends_with('\n') {
                    block.text.pop();
                }
                blocks.push(block);
            }
            Some((mut block, fence_indent)) => {
                block.text.push_str(&line[fence_indent.min(indent)..]);
                block.text.push('\n');
                open = Some((block, fence_indent));
            }
        }
    }
    assert!(open.is_none(), "docs/{}: unclosed code fence", page.name);
    blocks
}

fn all_blocks() -> Vec<Block> {
    pages().iter().flat_map(blocks_of).collect()
}

/// The page's text outside code fences, each line with its heading path (the headings above it).
fn prose_lines(page: &Page) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut in_fence = false;
    for line in page.text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        if let Some(level) = heading_level(line) {
            headings.retain(|(l, _)| *l < level);
            headings.push((level, line[level..].trim().to_owned()));
            continue;
        }
        out.push((
            headings.iter().map(|(_, h)| h.clone()).collect(),
            line.to_owned(),
        ));
    }
    out
}

fn heading_level(line: &str) -> Option<usize> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    (hashes > 0 && line[hashes..].starts_with(' ')).then_some(hashes)
}

/// The spans written between backticks on a line.
fn code_spans(line: &str) -> Vec<String> {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, span)| span.to_owned())
        .collect()
}

/// A command per line, with `\` continuations joined, comments and (in `console`) output dropped.
fn commands_of(block: &Block) -> Vec<String> {
    let mut commands = Vec::new();
    let mut pending = String::new();
    for raw in block.text.lines() {
        let mut line = raw.trim().to_owned();
        if block.lang == "console" && pending.is_empty() {
            match line.strip_prefix("$ ") {
                Some(command) => line = command.to_owned(),
                None => continue,
            }
        }
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(cut) = comment_start(&line) {
            line.truncate(cut);
            line = line.trim_end().to_owned();
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head.trim_end());
                pending.push(' ');
            }
            None => {
                pending.push_str(&line);
                commands.push(std::mem::take(&mut pending).trim().to_owned());
            }
        }
    }
    if !pending.trim().is_empty() {
        commands.push(pending.trim().to_owned());
    }
    commands
}

/// Where a ` #` comment starts outside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && i > 0 && bytes[i - 1] == b' ' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits a command line into words, honouring single and double quotes.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let (mut single, mut double) = (false, false);
    for c in command.chars() {
        match c {
            '\'' if !double => {
                single = !single;
                in_word = true;
            }
            '"' if !single => {
                double = !double;
                in_word = true;
            }
            c if c.is_whitespace() && !single && !double => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

// ---------------------------------------------------------------------------------------------
// Config snippets and key names

/// A config the loader accepts, into which snippets are merged.
fn base_config() -> toml::Table {
    r#"
[teleport]
addr = "teleport.example.com:3025"
identity = "/nonexistent/identity"

[jira]
url = "https://example.atlassian.net"
username = "jira-bot@example.com"
api_token = "token"
project = "ACCESS"

[http]
listen_addr = "127.0.0.1:8081"
"#
    .parse()
    .unwrap()
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(more)) => merge(existing, more),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Secret values that are file paths are read at load time: point them at a scratch file.
fn replace_secret_paths(table: &mut toml::Table, scratch: &Path) {
    for (key, value) in table.iter_mut() {
        match value {
            toml::Value::Table(inner) => replace_secret_paths(inner, scratch),
            toml::Value::String(text)
                if (key == "api_token" || key == "webhook_secret") && text.starts_with('/') =>
            {
                let file = scratch.join(key);
                std::fs::write(&file, "secret\n").unwrap();
                *text = file.display().to_string();
            }
            _ => {}
        }
    }
}

fn load(table: &toml::Table) -> Result<Vec<ConfigWarning>, String> {
    let text = toml::to_string(table).unwrap();
    Config::parse(&text, true)
        .map(|(_, warnings)| warnings)
        .map_err(|err| err.to_string())
}

#[test]
fn docs_toml_blocks_load_without_warnings() {
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for block in all_blocks().iter().filter(|b| b.lang == "toml") {
        let mut snippet: toml::Table = block
            .text
            .parse()
            .unwrap_or_else(|err| panic!("{}: not valid TOML: {err}", block.at()));
        replace_secret_paths(&mut snippet, scratch.path());
        let mut config = base_config();
        let trio = snippet
            .get("teleport")
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.contains_key("client_key") || t.contains_key("root_cas"));
        if trio && let Some(toml::Value::Table(teleport)) = config.get_mut("teleport") {
            teleport.remove("identity");
        }
        merge(&mut config, snippet);
        match load(&config) {
            Ok(warnings) => assert!(
                warnings.is_empty(),
                "{}: the loader warns: {warnings:?}",
                block.at()
            ),
            Err(err) => panic!("{}: the loader refuses it: {err}", block.at()),
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} TOML blocks found");
}

/// Whether the loader knows the key at `path` (`jira.statuses.pending`): an unknown key is only
/// ever a warning, so a key that loads without one, or that is refused for its value, is known.
fn key_is_known(path: &str) -> bool {
    let mut config = base_config();
    let segments: Vec<&str> = path.split('.').collect();
    let mut table = &mut config;
    for segment in &segments[..segments.len() - 1] {
        let entry = table
            .entry(segment.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(inner) => table = inner,
            _ => return false,
        }
    }
    table.insert(
        segments[segments.len() - 1].to_owned(),
        toml::Value::String("x".into()),
    );
    match load(&config) {
        Err(_) => true,
        Ok(warnings) => !warnings.iter().any(|w| match w {
            ConfigWarning::UnknownKey(unknown) => {
                path == unknown || path.starts_with(&format!("{unknown}."))
            }
            _ => false,
        }),
    }
}

fn is_config_path(span: &str) -> bool {
    let mut segments = span.split('.');
    let first = segments.next().unwrap_or_default();
    // `teleport.example.com` is a host name, not a key.
    let host = [".com", ".net", ".org", ".sh", ".io", ".local"]
        .iter()
        .any(|tld| span.ends_with(tld));
    CONFIG_SECTIONS.contains(&first)
        && !host
        && span.contains('.')
        && span
            .split('.')
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

fn in_helm_section(headings: &[String]) -> bool {
    headings.iter().any(|h| h.contains("Helm"))
}

/// Config keys the guide names in prose: `` `section.key` ``, `` `[section] key` ``, and the rows
/// of the key tables under `` `[section]` `` headings.
fn config_keys_in_prose() -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for page in pages() {
        for (number, (headings, line)) in prose_lines(&page).into_iter().enumerate() {
            let at = format!(
                "docs/{} ({})",
                page.name,
                headings.last().cloned().unwrap_or_default()
            );
            if !in_helm_section(&headings) {
                for span in code_spans(&line) {
                    if is_config_path(&span) {
                        keys.insert(span.clone(), at.clone());
                    }
                    // A table: `[jira.statuses]`.
                    if let Some(table) = span.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
                        && CONFIG_SECTIONS.contains(&table.split('.').next().unwrap_or_default())
                        && table
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                    {
                        keys.insert(table.to_owned(), at.clone());
                    }
                    if let Some((section, key)) = span
                        .strip_prefix('[')
                        .and_then(|rest| rest.split_once("] "))
                        && CONFIG_SECTIONS.contains(&section.split('.').next().unwrap_or_default())
                        && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    {
                        keys.insert(format!("{section}.{key}"), at.clone());
                    }
                }
            }
            // A key table: `| `key` | ... |` under a heading such as ## `[jira.statuses]`.
            let section = headings.last().and_then(|h| {
                h.strip_prefix("`[")
                    .and_then(|rest| rest.strip_suffix("]`"))
                    .map(str::to_owned)
            });
            if let (Some(section), Some(cell)) = (section, line.strip_prefix("| `"))
                && let Some((key, _)) = cell.split_once('`')
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                keys.insert(
                    format!("{section}.{key}"),
                    format!("{at}, table row {number}"),
                );
            }
        }
    }
    keys
}

#[test]
fn docs_config_keys_named_in_prose_exist() {
    let keys = config_keys_in_prose();
    assert!(keys.len() >= 40, "only {} keys found: {keys:?}", keys.len());
    let unknown: Vec<String> = keys
        .iter()
        .filter(|(path, _)| !key_is_known(path))
        .map(|(path, at)| format!("{path} (in {at})"))
        .collect();
    assert!(
        unknown.is_empty(),
        "the guide names keys the loader does not know: {unknown:#?}"
    );
    // The probe itself tells known from unknown keys.
    assert!(key_is_known("jira.statuses.pending") && key_is_known("http.tls.verify_client_cert"));
    assert!(!key_is_known("jira.projcet") && !key_is_known("log.colour"));
}

#[test]
fn docs_every_key_of_the_example_config_is_documented() {
    let (status, example, _) = run_binary(&["configure"]);
    assert!(status.success());
    let example: toml::Table = example
        .lines()
        .map(|l| l.trim_start_matches("# "))
        .filter(|l| !l.starts_with('#') && (l.starts_with('[') || l.contains(" = ")))
        .filter(|l| !l.contains(' ') || l.contains(" = "))
        .collect::<Vec<_>>()
        .join("\n")
        .parse()
        .unwrap_or_else(|err| panic!("the example's keys (comments included) parse: {err}"));
    let documented = config_keys_in_prose();
    let mut missing = Vec::new();
    for (section, value) in &example {
        for (key, value) in value.as_table().unwrap() {
            let path = format!("{section}.{key}");
            match value.as_table() {
                Some(inner) => {
                    for sub in inner.keys() {
                        let path = format!("{path}.{sub}");
                        if !documented.contains_key(&path) {
                            missing.push(path);
                        }
                    }
                }
                None if !documented.contains_key(&path) => missing.push(path),
                None => {}
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys of `teleport-jira configure` the guide does not describe: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Commands that cannot run here

/// `teleport-jira <subcommand> ...` invocations in a command, up to a shell operator.
fn invocations(command: &str) -> Vec<Vec<String>> {
    let words = words(command);
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let is_binary = word == "teleport-jira" || word.ends_with("/teleport-jira");
        let next = words.get(i + 1).map(String::as_str).unwrap_or_default();
        if is_binary && SUBCOMMANDS.contains(&next) {
            found.push(
                words[i + 1..]
                    .iter()
                    .take_while(|w| !matches!(w.as_str(), ">" | "|" | "&&" | ";" | "&" | "2>&1"))
                    .cloned()
                    .collect(),
            );
        }
    }
    found
}

/// The program a command runs, past `sudo` (and its `-u user`) and `VAR=value` assignments.
fn program_of(command: &str) -> String {
    let words = words(command);
    let mut iter = words.iter().peekable();
    while let Some(word) = iter.next() {
        if word == "sudo" {
            while let Some(flag) = iter.next_if(|w| w.starts_with('-')) {
                if flag == "-u" || flag == "-g" {
                    iter.next();
                }
            }
            continue;
        }
        if word.contains('=') && !word.starts_with('-') && !word.starts_with('$') {
            continue;
        }
        return word.rsplit('/').next().unwrap_or(word).to_owned();
    }
    String::new()
}

#[test]
fn docs_external_commands_use_other_tools_and_valid_teleport_jira_arguments() {
    let mut not_run = Vec::new();
    let mut parsed = 0;
    for block in all_blocks() {
        if block.is_shell() && block.has_tag("external") {
            for command in commands_of(&block) {
                let program = program_of(&command);
                assert!(
                    EXTERNAL_TOOLS.contains(&program.as_str()),
                    "{}: `{command}` runs {program:?}, which is neither run by this test nor a known external tool",
                    block.at()
                );
                not_run.push(format!("{}: {command}", block.at()));
            }
        }
        // Wherever the binary appears (external commands, unit files, manifests), its arguments
        // must be ones the binary accepts.
        let scanned =
            block.is_shell() || matches!(block.lang.as_str(), "ini" | "yaml" | "dockerfile");
        for command in commands_of(&block).into_iter().filter(|_| scanned) {
            for args in invocations(&command) {
                let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
                args.push("--help");
                let (status, _, stderr) = run_binary(&args);
                assert!(
                    status.success(),
                    "{}: teleport-jira does not accept `{}`: {stderr}",
                    block.at(),
                    args.join(" ")
                );
                parsed += 1;
            }
        }
    }
    assert!(parsed >= 5, "only {parsed} teleport-jira invocations found");
    println!(
        "Commands shown in the guide and not run here:\n{}",
        not_run.join("\n")
    );
}

/// Every `.rs` file under `dir`, concatenated.
fn source_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text.push_str(&source_text(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}

#[test]
fn docs_log_messages_are_ones_the_plugin_writes() {
    let source = source_text(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut checked = 0;
    for page in pages() {
        for (headings, line) in prose_lines(&page) {
            let in_table = headings.last().is_some_and(|h| h == "Logs") && line.starts_with("| `");
            let Some(message) = code_spans(&line).into_iter().next().filter(|_| in_table) else {
                continue;
            };
            assert!(
                source.contains(&format!("\"{message}")),
                "docs/{}: the plugin never logs `{message}`",
                page.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} log messages checked");
}

// ---------------------------------------------------------------------------------------------
// Links, repository files and chart values

fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

#[test]
fn docs_links_and_repository_paths_resolve() {
    let pages = pages();
    let anchors: BTreeMap<&str, BTreeSet<String>> = pages
        .iter()
        .map(|p| {
            let mut in_fence = false;
            let slugs = p
                .text
                .lines()
                .filter(|l| {
                    if l.trim_start().starts_with("```") {
                        in_fence = !in_fence;
                    }
                    !in_fence
                })
                .filter_map(|l| heading_level(l).map(|n| slug(&l[n..])))
                .collect();
            (p.name.as_str(), slugs)
        })
        .collect();
    let index = &pages.iter().find(|p| p.name == "README.md").unwrap().text;
    for page in &pages {
        assert!(
            page.name == "README.md" || index.contains(&format!("]({})", page.name)),
            "docs/README.md does not link {}",
            page.name
        );
        let mut rest = page.text.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let target = &rest[..rest.find(')').unwrap()];
            if target.starts_with("http") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                page.name.as_str()
            } else {
                file
            };
            let slugs = anchors
                .get(file)
                .unwrap_or_else(|| panic!("docs/{}: link to missing page {target}", page.name));
            assert!(
                anchor.is_empty() || slugs.contains(anchor),
                "docs/{}: link to missing heading {target} (headings: {slugs:?})",
                page.name
            );
        }
        for (_, line) in prose_lines(page) {
            for span in code_spans(&line) {
                if span.starts_with("deploy/") || span.starts_with("crates/") {
                    assert!(
                        Path::new(REPO).join(&span).exists(),
                        "docs/{} names {span}, which does not exist",
                        page.name
                    );
                }
            }
        }
    }
}

/// Key paths of a YAML mapping, from indentation (enough for a values file and examples of it).
fn yaml_key_paths(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut literal_indent: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(block) = literal_indent {
            if indent > block {
                continue;
            }
            literal_indent = None;
        }
        if trimmed.starts_with('-') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            continue;
        };
        if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        stack.retain(|(i, _)| *i < indent);
        let path = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .chain(std::iter::once(key))
            .collect::<Vec<_>>()
            .join(".");
        paths.insert(path);
        stack.push((indent, key.to_owned()));
        if matches!(value.trim(), "|" | "|-" | ">") {
            literal_indent = Some(indent);
        }
    }
    paths
}

#[test]
fn docs_helm_values_exist_in_the_chart() {
    let values_file = Path::new(REPO).join("deploy/helm/teleport-jira/values.yaml");
    let values = yaml_key_paths(
        &std::fs::read_to_string(&values_file)
            .unwrap_or_else(|err| panic!("the guide describes {}: {err}", values_file.display())),
    );
    let mut checked = 0;
    for block in all_blocks().iter().filter(|b| b.has_tag("helm-values")) {
        for path in yaml_key_paths(&block.text) {
            assert!(
                values.contains(&path),
                "{}: `{path}` is not a value of the chart",
                block.at()
            );
            checked += 1;
        }
    }
    for page in pages() {
        for (headings, line) in prose_lines(&page) {
            if !in_helm_section(&headings) {
                continue;
            }
            for span in code_spans(&line) {
                let looks_like_value = span.contains('.')
                    && !span.contains(' ')
                    && span.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
                    && values
                        .iter()
                        .any(|v| v.split('.').next() == span.split('.').next());
                if looks_like_value {
                    assert!(
                        values.contains(&span),
                        "docs/{} (Helm): `{span}` is not a value of the chart",
                        page.name
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} chart values checked");
}

// ---------------------------------------------------------------------------------------------
// Running the commands

/// The guide's commands against one sandbox: its config stands for `/etc/teleport-jira.toml`.
struct Runner {
    sandbox: Sandbox,
    webhook_port: u16,
    metrics_port: u16,
    scratch: tempfile::TempDir,
    /// A plugin running in the background: started with `&`, or for a `curl`.
    background: Option<Plugin>,
    http: reqwest::Client,
    check_output: String,
    metrics_body: String,
    ran: Vec<String>,
}

impl Runner {
    async fn new() -> Self {
        let metrics_port = free_port();
        let sandbox = Sandbox::with(SandboxOptions {
            webhook_tls: true,
            extra_config: format!("\n[metrics]\nlisten_addr = \"127.0.0.1:{metrics_port}\"\n"),
            ..Default::default()
        })
        .await;
        let webhook_port = sandbox
            .webhook_url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ca = std::fs::read(sandbox.path("webhook-ca.pem")).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            sandbox,
            webhook_port,
            metrics_port,
            scratch: tempfile::tempdir().unwrap(),
            background: None,
            http,
            check_output: String::new(),
            metrics_body: String::new(),
            ran: Vec::new(),
        }
    }

    fn config(&self) -> String {
        self.sandbox.config_path.display().to_string()
    }

    /// The arguments after the subcommand, with `-c /etc/teleport-jira.toml` (or none, meaning the
    /// default path) replaced by the sandbox's config.
    fn plugin_args(&self, at: &str, args: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let path = match arg.as_str() {
                "-c" | "--config" => iter.next().cloned(),
                other => other.strip_prefix("--config=").map(str::to_owned),
            };
            match path {
                Some(path) => assert_eq!(
                    path, DOC_CONFIG,
                    "{at}: runnable commands use {DOC_CONFIG} as the config path"
                ),
                None => {
                    assert!(
                        !arg.starts_with('/'),
                        "{at}: {arg} has no stand-in here; use {DOC_CONFIG} or mark the block `sh external`"
                    );
                    out.push(arg.clone());
                }
            }
        }
        out
    }

    fn spawn(&self, args: &[String]) -> Plugin {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Plugin::spawn(
            &self.sandbox.config_path,
            &self.sandbox.path("jira-ca.pem"),
            &args,
        )
    }

    async fn wait_ready(plugin: &Plugin, at: &str) {
        let ready = eventually(|| async { plugin.log().contains("Plugin is ready") }).await;
        assert!(
            ready,
            "{at}: the plugin never got ready; its log:\n{}",
            plugin.log()
        );
    }

    async fn stop_background(&mut self, at: &str) {
        if let Some(mut plugin) = self.background.take() {
            let status = plugin.terminate().await;
            assert!(
                status.success(),
                "{at}: the plugin did not exit cleanly on SIGTERM ({status}); its log:\n{}",
                plugin.log()
            );
        }
    }

    async fn run(&mut self, block: &Block, command: &str) {
        let at = block.at();
        let mut words = words(command);
        let background = words.last().is_some_and(|w| w == "&");
        if background {
            words.pop();
        }
        let redirect = match words.iter().position(|w| w == ">") {
            Some(i) => {
                let target = words.get(i + 1).cloned();
                words.truncate(i);
                target
            }
            None => None,
        };
        self.ran.push(format!("{at}: {command}"));
        match words.first().map(String::as_str) {
            Some("teleport-jira") => {
                self.teleport_jira(&at, &words[1..], redirect, background)
                    .await
            }
            Some("kill") => self.kill(&at, &words).await,
            Some("curl") => self.curl(&at, &words[1..]).await,
            other => panic!(
                "{at}: `{command}` runs {other:?}, which cannot run here; mark the block `sh external`"
            ),
        }
    }

    async fn teleport_jira(
        &mut self,
        at: &str,
        args: &[String],
        redirect: Option<String>,
        background: bool,
    ) {
        let subcommand = args.first().map(String::as_str).unwrap_or_default();
        let rest = self.plugin_args(at, &args[1..]);
        match subcommand {
            "start" => {
                // One listener port: whatever runs in the background makes way.
                self.stop_background(at).await;
                let plugin = self.spawn(&rest);
                Self::wait_ready(&plugin, at).await;
                if background {
                    self.background = Some(plugin);
                } else {
                    let mut plugin = plugin;
                    let status = plugin.terminate().await;
                    assert!(
                        status.success(),
                        "{at}: SIGTERM should end `start` with status 0, got {status}; log:\n{}",
                        plugin.log()
                    );
                }
            }
            "check" => {
                let output = tokio::process::Command::new(BINARY)
                    .arg("check")
                    .args(["--config", &self.config()])
                    .args(&rest)
                    .env("SSL_CERT_FILE", self.sandbox.path("jira-ca.pem"))
                    .env_remove("SSL_CERT_DIR")
                    .output()
                    .await
                    .unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                assert!(
                    output.status.success(),
                    "{at}: `check` should pass against a correct setup:\n{stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                assert!(
                    stdout.lines().all(|l| l.starts_with("OK ")),
                    "{at}: {stdout}"
                );
                self.check_output = stdout;
            }
            _ => {
                assert!(!background, "{at}: only `start` runs in the background");
                let mut argv = vec![subcommand.to_owned()];
                argv.extend(rest);
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                let output = tokio::time::timeout(
                    Duration::from_secs(300),
                    tokio::process::Command::new(BINARY)
                        .args(&argv)
                        .env("NO_COLOR", "1")
                        .stdin(std::process::Stdio::null())
                        .kill_on_drop(true)
                        .output(),
                )
                .await
                .unwrap_or_else(|_| {
                    panic!("{at}: `teleport-jira {}` did not finish", argv.join(" "))
                })
                .unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                assert!(
                    output.status.success(),
                    "{at}: `teleport-jira {}` failed ({}):\n{stdout}{}",
                    argv.join(" "),
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                );
                if subcommand == "version" {
                    assert!(stdout.starts_with("teleport-jira v"), "{at}: {stdout}");
                }
                if let Some(target) = redirect {
                    assert_eq!(target, DOC_CONFIG, "{at}: unexpected redirect target");
                    let file = self.scratch.path().join("teleport-jira.toml");
                    std::fs::write(&file, &stdout).unwrap();
                    let (_, warnings) = Config::load(&file, false).unwrap_or_else(|err| {
                        panic!("{at}: what `configure` printed does not load: {err}")
                    });
                    assert!(warnings.is_empty(), "{at}: {warnings:?}");
                }
            }
        }
    }

    async fn kill(&mut self, at: &str, words: &[String]) {
        let signal = words.get(1).map(String::as_str).unwrap_or_default();
        assert_eq!(
            words.get(2).map(String::as_str),
            Some("$!"),
            "{at}: `kill` signals the background plugin as `$!`"
        );
        let plugin = self
            .background
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: `kill` with no plugin started with `&`"));
        match signal {
            "-TERM" | "-INT" => self.stop_background(at).await,
            "-HUP" => {
                std::process::Command::new("kill")
                    .args(["-HUP", &plugin.pid().to_string()])
                    .status()
                    .unwrap();
                let plugin = self.background.as_ref().unwrap();
                let reloaded = eventually(|| async { plugin.log().contains("SIGHUP") }).await;
                assert!(
                    reloaded,
                    "{at}: no reload logged after SIGHUP:\n{}",
                    plugin.log()
                );
                let url = format!("https://localhost:{}/status", self.webhook_port);
                let alive = self.http.get(&url).send().await;
                assert!(
                    alive.is_ok_and(|r| r.status().is_success()),
                    "{at}: the listener stopped answering after SIGHUP; log:\n{}",
                    plugin.log()
                );
            }
            other => panic!("{at}: the guide sends {other}, which this test does not model"),
        }
    }

    /// checking.md's "End to end": a request gets its issue in Pending, a reviewer's comment and
    /// card move approve it in Teleport on their behalf, and a request denied in Teleport moves its
    /// card. A Jira and a Teleport failure on the way are retried.
    async fn end_to_end(&mut self) {
        use teleport_proto::types::RequestState;
        if self.background.is_none() {
            let plugin = self.spawn(&[]);
            Self::wait_ready(&plugin, "end to end").await;
            self.background = Some(plugin);
        }
        let sandbox = &self.sandbox;
        let plugin = self.background.as_ref().unwrap();
        sandbox.jira.faults().fail_next_matching("/issue", 1, 503);
        sandbox
            .teleport
            .fail_next("GetPluginData", tonic::Code::Unavailable, 1);
        let id = sandbox.create_request("debugging the billing outage");
        let issue = sandbox.issue_of(&id).await;
        assert_eq!(issue.status, "Pending", "new issues start in Pending");
        let created = eventually(|| async {
            plugin.log().lines().any(|l| {
                l.contains("Jira Issue created")
                    && l.contains(&format!("reconcile{{request_id={id}"))
                    && l.contains(&issue.key)
            })
        })
        .await;
        assert!(
            created,
            "no `Jira Issue created` line naming {id} and {}:\n{}",
            issue.key,
            plugin.log()
        );
        sandbox
            .jira
            .comment_as(&issue.id, JIRA_REVIEWER, "Reason: looks fine")
            .unwrap();
        sandbox
            .jira
            .transition_as(&issue.id, "Approved", JIRA_REVIEWER)
            .unwrap();
        let approved =
            eventually(|| async { sandbox.state_of(&id) == Some(RequestState::Approved) }).await;
        assert!(approved, "the card move was not applied:\n{}", plugin.log());
        let events = sandbox.audit_events_of(&id);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].delegator, format!("jira:{JIRA_REVIEWER_EMAIL}"));
        assert_eq!(events[0].reason, "looks fine");
        let commented = eventually(|| async {
            sandbox.jira.issue(&issue.id).is_some_and(|i| {
                i.comments
                    .iter()
                    .any(|c| c.body.contains("Access request has been approved"))
            })
        })
        .await;
        assert!(commented, "no resolution comment:\n{}", plugin.log());

        let denied = sandbox.create_request("a second look");
        let denied_issue = sandbox.issue_of(&denied).await;
        sandbox
            .teleport
            .set_state_as("admin", &denied, RequestState::Denied, "not now", "")
            .unwrap();
        let moved = eventually(|| async {
            sandbox
                .jira
                .issue(&denied_issue.id)
                .is_some_and(|i| i.status == "Denied")
        })
        .await;
        assert!(
            moved,
            "a denial in Teleport did not move the card:\n{}",
            plugin.log()
        );
    }

    async fn curl(&mut self, at: &str, args: &[String]) {
        let mut fail_on_error = false;
        let mut user = None;
        let mut url = None;
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "-u" | "--user" => user = iter.next().cloned(),
                flag if flag.starts_with("--") => {}
                flag if flag.starts_with('-') => fail_on_error |= flag.contains('f'),
                target => url = Some(target.to_owned()),
            }
        }
        let url = url.unwrap_or_else(|| panic!("{at}: curl without a URL"));
        let url = url
            .replace(
                DOC_WEBHOOK_AUTHORITY,
                &format!("localhost:{}", self.webhook_port),
            )
            .replace(
                DOC_METRICS_AUTHORITY,
                &format!("127.0.0.1:{}", self.metrics_port),
            );
        assert!(
            url.contains(&format!(":{}/", self.webhook_port))
                || url.contains(&format!(":{}/", self.metrics_port)),
            "{at}: curl runs against {DOC_WEBHOOK_AUTHORITY} or {DOC_METRICS_AUTHORITY} only"
        );
        if self.background.is_none() {
            let plugin = self.spawn(&[]);
            Self::wait_ready(&plugin, at).await;
            self.background = Some(plugin);
        }
        // `-f`: the guide expects success; readiness may take a moment after start.
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = String::new();
        let ok = loop {
            let mut request = self.http.get(&url);
            if let Some((name, password)) = user.as_deref().and_then(|u| u.split_once(':')) {
                request = request.basic_auth(name, Some(password));
            }
            match request.send().await {
                Ok(response) if response.status().is_success() || !fail_on_error => {
                    let body = response.text().await.unwrap_or_default();
                    if url.ends_with("/metrics") {
                        self.metrics_body = body;
                    }
                    break true;
                }
                Ok(response) => {
                    let status = response.status();
                    last = format!("{status} {}", response.text().await.unwrap_or_default());
                }
                Err(err) => last = err.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(ok, "{at}: GET {url} never succeeded: {last}");
    }
}

#[tokio::test]
async fn docs_commands_run_as_the_guide_says() {
    let blocks = all_blocks();
    let mut runner = Runner::new().await;
    for block in blocks
        .iter()
        .filter(|b| b.is_shell() && !b.has_tag("external"))
    {
        for command in commands_of(block) {
            runner.run(block, &command).await;
        }
        // `$!` lives for one block.
        if block.text.contains('&') {
            runner.stop_background(&block.at()).await;
        }
    }

    // The sample output of `check` names only checks that exist.
    let real: BTreeSet<String> = runner.check_output.lines().filter_map(check_name).collect();
    assert!(
        !real.is_empty(),
        "the guide never runs `teleport-jira check`"
    );
    for block in blocks.iter().filter(|b| b.has_tag("check-output")) {
        for name in block.text.lines().filter_map(check_name) {
            assert!(
                real.contains(&name),
                "{}: `check` prints no {name:?} line; it printed:\n{}",
                block.at(),
                runner.check_output
            );
        }
    }

    // "End to end" in checking.md, with a Jira and a Teleport failure on the way, then every
    // metric the guide names is served.
    assert!(
        !runner.metrics_body.is_empty(),
        "the guide never fetches /metrics"
    );
    runner.end_to_end().await;
    let metrics_url = format!("http://127.0.0.1:{}/metrics", runner.metrics_port);
    let body = runner
        .http
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut named = BTreeSet::new();
    for page in pages() {
        for (_, line) in prose_lines(&page) {
            for span in code_spans(&line) {
                if let Some(rest) = span.strip_prefix("teleport_jira_")
                    && !rest.is_empty()
                {
                    let name = span.split(['{', ' ']).next().unwrap().to_owned();
                    named.insert(name);
                }
            }
        }
    }
    assert!(named.len() >= 12, "only {} metrics named", named.len());
    for name in &named {
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            body.contains(&format!("# TYPE {family} ")),
            "/metrics has no {name}:\n{body}"
        );
    }
    runner.stop_background("the end of the guide").await;
    println!("Commands run:\n{}", runner.ran.join("\n"));
    println!("`check` printed:\n{}", runner.check_output);
}

/// `OK   teleport role: may ...` → `teleport role`.
fn check_name(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix("OK ")
        .or_else(|| line.strip_prefix("FAIL "))?;
    Some(rest.trim_start().split_once(':')?.0.to_owned())
}
