//! `concord ctl`: each verb is one HTTP request to a node; the answer's JSON
//! is printed (pretty unless `--json`), and a 4xx/5xx answer exits non-zero.

use crate::cli::{
    ConfigAction, CtlArgs, CtlVerb, GossipAction, MembersAction, QuorumAction, TaskAction, WeightArg,
};
use serde_json::{json, Value};

/// One request: method, path (with query), body.
fn request(args: &CtlArgs) -> (&'static str, String, Option<Value>) {
    let group = format!("group={}", args.group);
    let key_path = |key: &str| format!("/kv/{}", percent_encode(key));
    match &args.verb {
        CtlVerb::Status => ("GET", format!("/raft/status?{group}"), None),
        CtlVerb::Leader => ("GET", format!("/raft/leader?{group}"), None),
        CtlVerb::LogStatus => ("GET", format!("/raft/log-status?{group}"), None),
        CtlVerb::ElectionHistory => ("GET", format!("/raft/election-history?{group}"), None),
        CtlVerb::StepDown => ("POST", format!("/raft/step-down?{group}"), None),
        CtlVerb::TriggerElection => ("POST", format!("/raft/trigger-election?{group}"), None),
        CtlVerb::VerifyQuorum => ("GET", format!("/raft/verify-quorum?{group}"), None),
        CtlVerb::Config { action: ConfigAction::Get } => ("GET", "/raft/config".into(), None),
        CtlVerb::Config {
            action:
                ConfigAction::Set { heartbeat_ms, election_timeout_min_ms, election_timeout_max_ms, batch_size },
        } => {
            let mut body = serde_json::Map::new();
            for (name, value) in [
                ("heartbeat_ms", *heartbeat_ms),
                ("election_timeout_min_ms", *election_timeout_min_ms),
                ("election_timeout_max_ms", *election_timeout_max_ms),
                ("batch_size", batch_size.map(|v| v as u64)),
            ] {
                if let Some(value) = value {
                    body.insert(name.into(), json!(value));
                }
            }
            ("PUT", "/raft/config".into(), Some(Value::Object(body)))
        }
        CtlVerb::Put { key, value, prev_kv } => {
            let prev_kv = if *prev_kv { "&prev_kv=true" } else { "" };
            ("PUT", format!("{}?{group}{prev_kv}", key_path(key)), Some(json!({ "value": value })))
        }
        CtlVerb::Get { key, stale, lease } => {
            let consistency = if *stale {
                "stale"
            } else if *lease {
                "lease"
            } else {
                "linearizable"
            };
            ("GET", format!("{}?{group}&consistency={consistency}", key_path(key)), None)
        }
        CtlVerb::Delete { key } => ("DELETE", format!("{}?{group}", key_path(key)), None),
        CtlVerb::Cas { key, expected, new } => (
            "POST",
            format!("{}/cas?{group}", key_path(key)),
            Some(json!({ "expected": expected, "new": new })),
        ),
        CtlVerb::Task { action: TaskAction::Submit { task_id, payload } } => {
            ("POST", format!("/tasks?{group}"), Some(json!({ "task_id": task_id, "payload": payload })))
        }
        CtlVerb::Task { action: TaskAction::Status { task_id } } => {
            ("GET", format!("/tasks/{}?{group}", percent_encode(task_id)), None)
        }
        CtlVerb::Task { action: TaskAction::Results } => ("GET", format!("/tasks/results?{group}"), None),
        CtlVerb::Metrics => ("GET", "/metrics".into(), None),
        CtlVerb::Health => ("GET", format!("/health?{group}"), None),
        CtlVerb::Quorum { action } => match action {
            QuorumAction::Recommend => ("GET", format!("/quorum/recommend?{group}"), None),
            QuorumAction::History => ("GET", format!("/quorum/history?{group}"), None),
            QuorumAction::Verify => ("POST", format!("/quorum/verify?{group}"), None),
            QuorumAction::Adjust { voters, learners, policy } => {
                let body = json!({ "voters": weights(voters), "learners": learners, "policy": policy.0 });
                ("POST", format!("/quorum/adjust?{group}"), Some(body))
            }
            QuorumAction::Weights { weights: named } => {
                ("POST", format!("/quorum/weights?{group}"), Some(json!({ "weights": weights(named) })))
            }
            QuorumAction::Policy { policy } => {
                ("POST", format!("/quorum/policy?{group}"), Some(json!({ "policy": policy.0 })))
            }
        },
        CtlVerb::Members { action } => match action {
            None => ("GET", "/gossip/members".into(), None),
            Some(MembersAction::Add { node, voter }) => {
                ("POST", format!("/members/add?{group}"), Some(json!({ "node": node, "voter": voter })))
            }
            Some(MembersAction::Remove { node }) => {
                ("POST", format!("/members/remove?{group}"), Some(json!({ "node": node })))
            }
            Some(MembersAction::Promote { node }) => {
                ("POST", format!("/members/promote?{group}"), Some(json!({ "node": node })))
            }
        },
        CtlVerb::Gossip { action } => {
            let state = |key: &str| format!("/gossip/state/{}", percent_encode(key));
            match action {
                GossipAction::StateUpdate { key, value } => {
                    ("PUT", state(key), Some(json!({ "value": value })))
                }
                GossipAction::QueryState { key } => ("GET", state(key), None),
                GossipAction::Members => ("GET", "/gossip/members".into(), None),
                GossipAction::Convergence => ("GET", "/gossip/convergence".into(), None),
                GossipAction::Conflicts => ("GET", "/gossip/conflicts".into(), None),
                GossipAction::AntiEntropy => ("POST", "/gossip/anti-entropy".into(), None),
                GossipAction::DegradedMode { mode } => {
                    ("PUT", "/gossip/degraded-mode".into(), Some(json!({ "on": mode == "on" })))
                }
                GossipAction::Metrics => ("GET", "/gossip/metrics".into(), None),
            }
        }
    }
}

/// `{"ID": WEIGHT, ...}`, the JSON form of voters' weights.
fn weights(voters: &[WeightArg]) -> Value {
    Value::Object(voters.iter().map(|v| (v.node.to_string(), json!(v.weight))).collect())
}

/// Escapes everything but unreserved characters, so any key fits in a path.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs one ctl command; returns the process exit code.
pub async fn run(args: CtlArgs) -> u8 {
    let (method, path, body) = request(&args);
    let url = format!("{}{}", args.endpoint.trim_end_matches('/'), path);
    let client = awc::Client::default();
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap_or(awc::http::Method::GET);
    let request = client.request(method, &url);
    let sent = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            eprintln!("concord ctl: cannot reach {url}: {error}");
            return 2;
        }
    };
    let status = response.status();
    let bytes = match response.body().limit(64 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(error) => {
            eprintln!("concord ctl: reading the answer from {url}: {error}");
            return 2;
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => {
            let text =
                if args.json { serde_json::to_string(&value) } else { serde_json::to_string_pretty(&value) };
            println!("{}", text.unwrap_or_default());
        }
        Err(_) => print!("{}", String::from_utf8_lossy(&bytes)),
    }
    if status.is_success() {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctl(words: &[&str]) -> (&'static str, String, Option<Value>) {
        use clap::Parser;
        let cli =
            crate::cli::Cli::try_parse_from(["concord", "ctl"].iter().chain(words)).expect("valid flags");
        let crate::cli::Verb::Ctl(args) = cli.command else { panic!("not ctl") };
        let (method, path, body) = request(&args);
        (method, path, body)
    }

    #[test]
    fn quorum_changes_become_json_bodies() {
        let (method, path, body) = ctl(&[
            "--group",
            "critical",
            "quorum",
            "adjust",
            "--voter",
            "1=2",
            "--voter",
            "2",
            "--learner",
            "6",
        ]);
        assert_eq!((method, path.as_str()), ("POST", "/quorum/adjust?group=critical"));
        assert_eq!(body, Some(json!({"voters": {"1": 2, "2": 1}, "learners": [6], "policy": "majority"})));
        let (_, path, body) = ctl(&["quorum", "weights", "1=3", "2=1"]);
        assert_eq!(path, "/quorum/weights?group=default");
        assert_eq!(body, Some(json!({"weights": {"1": 3, "2": 1}})));
        let (_, path, body) = ctl(&["quorum", "policy", "flexible:4:2"]);
        assert_eq!(path, "/quorum/policy?group=default");
        assert_eq!(body, Some(json!({"policy": {"flexible": {"election_weight": 4, "commit_weight": 2}}})));
    }

    #[test]
    fn bad_quorum_arguments_are_refused_with_the_reason() {
        use clap::Parser;
        for (words, reason) in [
            (&["quorum", "policy", "quadratic"][..], "is not majority, weighted or flexible"),
            (&["quorum", "policy", "flexible:4"][..], "is not majority, weighted or flexible"),
            (&["quorum", "weights", "1=heavy"][..], "\"heavy\" is not a weight"),
            (&["quorum", "adjust", "--voter", "x"][..], "\"x\" is not a node id"),
        ] {
            let error = crate::cli::Cli::try_parse_from(["concord", "ctl"].iter().chain(words)).unwrap_err();
            assert!(error.to_string().contains(reason), "{words:?}: {error}");
        }
    }

    #[test]
    fn keys_are_escaped_in_paths() {
        assert_eq!(percent_encode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(percent_encode("plain-key_1.x~"), "plain-key_1.x~");
    }
}
