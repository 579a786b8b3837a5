//! `/metrics` of a three-node cluster in one process: the proposal-latency
//! histogram counts exactly the writes made, gossip rounds advance, gossip
//! sees three alive members, and the quorum manager reports a healthy group.

mod in_process;

use actix_web::{test, web, App};
use concord_runtime::http::routes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// Parses the exposition text into `series with labels → value`.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse::<f64>().unwrap())
        })
        .collect()
}

#[actix::test]
async fn metrics_show_proposal_latency_gossip_rounds_members_and_quorum_health() {
    let data = tempfile::tempdir().unwrap();
    let nodes = in_process::cluster(3, data.path()).await;
    let app =
        test::init_service(App::new().app_data(web::Data::new(nodes[0].clone())).configure(routes)).await;
    let scrape = async || {
        let response = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        assert!(response.status().is_success());
        parse(std::str::from_utf8(&test::read_body(response).await).unwrap())
    };

    let writes = 20;
    for i in 0..writes {
        let request = test::TestRequest::put()
            .uri(&format!("/kv/k{i}"))
            .set_json(serde_json::json!({ "value": format!("v{i}") }))
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), 200, "write {i}");
    }

    let first = scrape().await;
    // The Raft counters of the group.
    for counter in [
        "proposals",
        "entries_applied",
        "entries_applied_early",
        "batches_persisted",
        "snapshots_taken",
        "snapshots_installed",
        "appends_refused_full",
    ] {
        let series = format!("concord_raft_{counter}_total{{group=\"default\"}}");
        assert!(first.contains_key(&series), "{series} missing");
    }
    assert!(first["concord_raft_batches_persisted_total{group=\"default\"}"] > 0.0);
    let bucket = |m: &BTreeMap<String, f64>, le: &str| {
        m[&format!("concord_proposal_latency_seconds_bucket{{group=\"default\",le=\"{le}\"}}")]
    };
    assert_eq!(first["concord_proposal_latency_seconds_count{group=\"default\"}"], writes as f64);
    assert_eq!(bucket(&first, "+Inf"), writes as f64);
    let bounds = [
        "0.0001", "0.00025", "0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
        "0.5", "1", "2.5", "5",
    ];
    let counts: Vec<f64> = bounds.iter().map(|le| bucket(&first, le)).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "cumulative buckets: {counts:?}");
    // Each write went through Raft on three nodes over loopback: more than
    // nothing, and (on an idle machine) well under the 5 s bucket.
    let sum = first["concord_proposal_latency_seconds_sum{group=\"default\"}"];
    assert!(sum > 0.0 && sum < writes as f64 * 5.0, "sum {sum}");
    assert_eq!(bucket(&first, "5"), writes as f64, "{counts:?}");

    // Gossip: rounds advance, and all three members end up alive.
    let rounds = first["concord_gossip_rounds_total"];
    let start = Instant::now();
    let settled = loop {
        let now = scrape().await;
        let alive = now["concord_gossip_members{state=\"alive\"}"];
        let healthy = now["concord_quorum_status{group=\"default\",status=\"healthy\"}"];
        if alive == 3.0 && healthy == 1.0 && now["concord_gossip_rounds_total"] > rounds {
            break now;
        }
        assert!(start.elapsed() < DEADLINE, "never settled: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for state in ["suspect", "dead", "left"] {
        assert_eq!(settled[&format!("concord_gossip_members{{state=\"{state}\"}}")], 0.0, "{state}");
    }
    assert_eq!(settled["concord_quorum_status{group=\"default\",status=\"degraded\"}"], 0.0);
    assert_eq!(settled["concord_quorum_available{group=\"default\"}"], 1.0);
    assert_eq!(settled["concord_quorum_voters{group=\"default\"}"], 3.0);
    assert_eq!(settled["concord_quorum_size{group=\"default\"}"], 2.0);
    assert_eq!(settled["concord_quorum_failures_tolerated{group=\"default\"}"], 1.0);

    for node in &nodes {
        node.stop();
    }
}
