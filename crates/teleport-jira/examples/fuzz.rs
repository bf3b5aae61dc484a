//! A time-bounded mutation fuzzer for the parsers that read what others send: webhook bodies,
//! identity files, Jira comments (the reason parser) and the escaping of user text.
//!
//! `cargo fuzz` needs a nightly toolchain with sanitizers, which CI machines do not have; this
//! runs on stable. It is not coverage-guided: it mutates a seed corpus (real payload shapes,
//! an identity file's layout, comment forms, markup) with byte flips, insertions, deletions,
//! splices and dictionary tokens, keeps a bounded random corpus, and fails on the first panic or
//! broken invariant, printing the input.
//!
//! Usage: `cargo run -p teleport-jira --example fuzz -- [--seconds N] [target ...]`

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use teleport_jira::jira::decision::reason_in_comment;
use teleport_jira::jira::markup::escape;
use teleport_jira::teleport::identity::parse_identity_file;
use teleport_jira::webhook::parse_delivery;

const MAX_INPUT: usize = 64 * 1024;
const CORPUS_SIZE: usize = 256;
const DICTIONARY: &[&str] = &[
    "-----BEGIN ",
    "-----END ",
    "PRIVATE KEY-----",
    "CERTIFICATE-----",
    "RSA PRIVATE KEY-----",
    "\n",
    "ssh-rsa-cert-v01@openssh.com ",
    "@cert-authority ",
    "reason:",
    "Resolution :",
    "\r\n",
    "{",
    "}",
    "[",
    "]",
    "|",
    "!",
    "*",
    "\\",
    "h1. ",
    "https://",
    "\"issue\":",
    "\"id\":",
    "\"webhookEvent\":",
    "\"jira:issue_updated\"",
    "null",
    "1e999",
    "\"\\u0000\"",
    "é",
    "\u{FEFF}",
];

struct Target {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    run: fn(&[u8]),
}

fn targets() -> Vec<Target> {
    let webhook = br#"{"timestamp":1,"webhookEvent":"jira:issue_updated","issue_event_type_name":"issue_generic","user":{"accountId":"5b10","displayName":"Carol"},"issue":{"id":"10001","key":"PROJ-1","fields":{"status":{"name":"Approved"}}},"changelog":{"items":[{"field":"status","fieldtype":"jira","toString":"Approved"}]}}"#;
    let identity = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20=\n-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n@cert-authority example.com,*.example.com ssh-rsa AAAAB3Nza type=host\n-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
    vec![
        Target {
            name: "webhook",
            seeds: vec![webhook.to_vec(), b"{}".to_vec(), b"[]".to_vec()],
            run: |input| drop(parse_delivery(input)),
        },
        Target {
            name: "identity",
            seeds: vec![identity.as_bytes().to_vec()],
            run: |input| drop(parse_identity_file(&String::from_utf8_lossy(input))),
        },
        Target {
            name: "reason",
            seeds: vec![
                b"hi!\nReason:\n\nfoo\nbar".to_vec(),
                b"x\nreason: foo bar baz".to_vec(),
                b"  resolution :  ok  ".to_vec(),
            ],
            run: |input| drop(reason_in_comment(&String::from_utf8_lossy(input))),
        },
        Target {
            name: "markup",
            seeds: vec![
                b"see [x|https://e.example] {code}*b*{code}\nh1. t\n# l".to_vec(),
                "r\u{e9}sum\u{e9} -x- \\".as_bytes().to_vec(),
            ],
            run: |input| {
                let text = String::from_utf8_lossy(input);
                let escaped = escape(&text);
                assert!(
                    escaped.len() <= text.len() * 2,
                    "escaping more than doubled the text"
                );
                assert!(
                    !escaped.contains("https://"),
                    "a bare link survived escaping"
                );
            },
        },
    ]
}

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..rng.random_range(1..=4) {
        match rng.random_range(0..6) {
            0 if !input.is_empty() => {
                let at = rng.random_range(0..input.len());
                input[at] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let at = rng.random_range(0..=input.len());
                input.insert(at, rng.random());
            }
            2 if !input.is_empty() => {
                let start = rng.random_range(0..input.len());
                let end = (start + rng.random_range(1..=16)).min(input.len());
                input.drain(start..end);
            }
            3 if !input.is_empty() => {
                let start = rng.random_range(0..input.len());
                let end = (start + rng.random_range(1..=64)).min(input.len());
                let copy = input[start..end].to_vec();
                let at = rng.random_range(0..=input.len());
                input.splice(at..at, copy);
            }
            4 if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                let cut = rng.random_range(0..=input.len());
                let from = rng.random_range(0..=other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            _ => {
                let token = DICTIONARY[rng.random_range(0..DICTIONARY.len())].as_bytes();
                let at = rng.random_range(0..=input.len());
                input.splice(at..at, token.iter().copied());
            }
        }
    }
    input.truncate(MAX_INPUT);
}

fn fuzz(target: &Target, budget: Duration, seed: u64) -> Result<u64, Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut corpus = target.seeds.clone();
    let deadline = Instant::now() + budget;
    let mut executions = 0u64;
    while Instant::now() < deadline {
        for _ in 0..256 {
            let mut input = corpus[rng.random_range(0..corpus.len())].clone();
            mutate(&mut rng, &mut input, &corpus);
            if catch_unwind(AssertUnwindSafe(|| (target.run)(&input))).is_err() {
                return Err(input);
            }
            executions += 1;
            if corpus.len() < CORPUS_SIZE {
                corpus.push(input);
            } else if rng.random_ratio(1, 8) {
                let slot = rng.random_range(target.seeds.len()..CORPUS_SIZE);
                corpus[slot] = input;
            }
        }
    }
    Ok(executions)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut seconds = 10u64;
    let mut wanted = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds),
            name => wanted.push(name.to_owned()),
        }
    }
    // Panics are the findings; their default report would interleave with ours.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for target in targets()
        .iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.name))
    {
        match fuzz(
            target,
            Duration::from_secs(seconds),
            0x5eed ^ target.name.len() as u64,
        ) {
            Ok(executions) => println!(
                "fuzz {}: {executions} executions in {seconds} s, 0 crashes",
                target.name
            ),
            Err(input) => {
                failed = true;
                println!(
                    "fuzz {}: CRASH on input (hex) {}",
                    target.name,
                    hex::encode(&input)
                );
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
