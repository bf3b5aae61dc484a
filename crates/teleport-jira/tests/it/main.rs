//! End-to-end suites: the built binary against FakeTeleport and FakeJira over real sockets and TLS.

// The sandbox: fakes, files and the plugin process.
mod support;
// The Go plugin's own integration cases, one test each.
mod go_suite;
// CLI behaviour: configure, version, start failures.
mod cli;
// The Teleport client library over mutual TLS: routes, refusals, watch, CAS, identity refresh.
mod teleport_client;
// Forged and malformed webhooks change nothing.
mod webhook;
// A cluster already served by the Go plugin is taken over without duplicates.
mod takeover;
// Every way the Go plugin loses work, and replicas running side by side.
mod nothing_lost;
// Jira's rate limit (with and without Retry-After) and a panicking step lose nothing.
mod push_back;
// A burst of new requests shares bulk creations; each request still gets exactly its own issue.
mod bursts;
// Renamed workflows, Data Center, hostile text, resource requests, labels and fields.
mod jira_setups;
// `teleport-jira check` against misconfigured fakes.
mod check;
// Signed webhooks, the self-approval guard, the approver allowlist, review mode.
mod approvals;
// Who decided: a move found in the paged changelog, an anonymous move sent back.
mod who_decided;
// Property tests of the parsers fed by others: webhook bodies, identity files, comments, markup.
mod hostile_input;
// Routing by Access Monitoring Rules: projects, issue types, labels, none, schedules, changes.
mod routing;
// On-call approval through JSM Operations: one review, never twice, nothing on failure.
mod oncall;
// Readiness, metrics, SIGHUP reloads, JSON logs and the demo sandbox.
mod operable;
// A few hundred requests under dropped webhooks, Jira errors, restarts and SIGKILLs.
mod chaos;
// The operator guide: its snippets load, its keys exist, its commands run.
mod docs;
// The demo's board in a real headless Chromium: ask for access, approve the card, see it approved.
// (The demo is in binaries built with the `demo` feature, as the test command builds them.)
#[cfg(feature = "demo")]
mod board_browser;
// `teleport-jira demo`: the walk-through and the board it keeps running.
#[cfg(feature = "demo")]
mod demo;
// The alert rules and dashboard in deploy/monitoring/ and the scrape, checked by promtool.
mod monitoring;

mod people;

mod audit;
