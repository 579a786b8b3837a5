//! `/quorum/adjust`, `/quorum/weights` and `/quorum/policy` on a three-node
//! cluster in one process: bad bodies and unsafe targets get a 400 JSON
//! error, a follower a 409, and accepted changes reach Raft's configuration
//! (weights and policy as Raft's voter weights).

mod in_process;

use actix_web::test;
use concord_raft::actor::GetStatus;
use concord_runtime::node::Node;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// Voter id → Raft weight, as node `node`'s Raft actor has it.
async fn raft_weights(node: &Node) -> BTreeMap<u64, u64> {
    let status = node.group("default").unwrap().raft.send(GetStatus).await.unwrap();
    status.membership.voters.iter().map(|(id, w)| (id.0, *w)).collect()
}

/// POSTs `body` as JSON to `path` on `service`: the status and JSON answer.
macro_rules! post {
    ($service:expr, $path:expr, $body:expr) => {{
        let request = test::TestRequest::post().uri($path).set_json($body).to_request();
        let response = test::call_service($service, request).await;
        let status = response.status().as_u16();
        let answer: Value = test::read_body_json(response).await;
        (status, answer)
    }};
}

#[actix::test]
async fn quorum_changes_over_http_reach_raft_and_bad_ones_get_json_errors() {
    let data = tempfile::tempdir().unwrap();
    let nodes = in_process::cluster(3, data.path()).await;
    let leader = in_process::leader(&nodes).await;
    let id = leader.id().0;
    let follower = nodes.iter().find(|n| n.id().0 != id).unwrap().clone();
    let others: Vec<u64> = nodes.iter().map(|n| n.id().0).filter(|&n| n != id).collect();

    let on_leader = in_process::api(leader.clone()).await;
    let on_follower = in_process::api(follower.clone()).await;

    // The leader's manager learns of its leadership at its next poll.
    let weighted = json!({ "voters": { id.to_string(): 2, others[0].to_string(): 1, others[1].to_string(): 1 },
                           "policy": "weighted" });
    let start = Instant::now();
    loop {
        let (status, body) = post!(&on_leader, "/quorum/adjust", weighted.clone());
        if status == 200 {
            assert!(body["outcome"].as_str().unwrap().contains("Completed"), "{body}");
            break;
        }
        assert_eq!(status, 409, "{body}");
        assert!(start.elapsed() < DEADLINE, "the adjustment never went through: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected: BTreeMap<u64, u64> = [(id, 2), (others[0], 1), (others[1], 1)].into();
    assert_eq!(raft_weights(&leader).await, expected);

    let reweigh = json!({ "weights": { others[0].to_string(): 2 } });
    let (status, body) = post!(&on_leader, "/quorum/weights", reweigh);
    assert_eq!(status, 200, "{body}");
    let expected: BTreeMap<u64, u64> = [(id, 2), (others[0], 2), (others[1], 1)].into();
    assert_eq!(raft_weights(&leader).await, expected);

    let (status, body) = post!(&on_leader, "/quorum/policy", json!({ "policy": "majority" }));
    assert_eq!(status, 200, "{body}");
    let expected: BTreeMap<u64, u64> = [(id, 1), (others[0], 1), (others[1], 1)].into();
    assert_eq!(raft_weights(&leader).await, expected);

    // Bad bodies and unsafe targets: 400 with the reason; a follower: 409.
    let cases = [
        ("/quorum/adjust", json!({ "voters": {}, "policy": "majority" }), "at least one voter"),
        (
            "/quorum/adjust",
            json!({ "voters": { "1": 0 }, "policy": "majority" }),
            "weight 0 is not within 1..=",
        ),
        (
            "/quorum/adjust",
            json!({ "voters": { "1": 1, "2": 1 }, "learners": [2], "policy": "majority" }),
            "node 2 is both a voter and a learner",
        ),
        ("/quorum/adjust", json!({ "voters": { "1": 1 } }), "missing field `policy`"),
        ("/quorum/adjust", json!({ "voters": { "one": 1 }, "policy": "majority" }), "invalid JSON body"),
        ("/quorum/weights", json!({ "weights": {} }), "at least one voter"),
        ("/quorum/weights", json!({ "weights": { "1": 1 }, "extra": 1 }), "unknown field `extra`"),
        ("/quorum/weights", json!({ "weights": { "1": 1001 } }), "weight 1001 is not within"),
        ("/quorum/policy", json!({ "policy": "quadratic" }), "invalid JSON body"),
        (
            "/quorum/policy",
            json!({ "policy": { "flexible": { "election_weight": 1, "commit_weight": 1 } } }),
            "",
        ),
        ("/quorum/weights", json!({ "weights": { "9": 1 } }), "9"),
    ];
    for (path, body, reason) in cases {
        let (status, answer) = post!(&on_leader, path, body.clone());
        assert_eq!((status, answer["error"].as_str()), (400, Some("bad_request")), "{path} {body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(reason), "{path} {body}: {answer}");
    }
    let (status, answer) = post!(&on_follower, "/quorum/policy", json!({ "policy": "weighted" }));
    assert_eq!((status, answer["error"].as_str()), (409, Some("conflict")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not the leader"), "{answer}");

    // Nothing refused changed the configuration.
    assert_eq!(raft_weights(&leader).await, expected);
    for node in &nodes {
        node.stop();
    }
}
