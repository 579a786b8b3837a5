//! The node-thread HTTP server answers a plain put (`PUT /kv/{key}`, no
//! query, a JSON body) itself, ahead of the App: these tests send raw
//! requests over TCP and check that it answers each as the App does, and
//! that anything else, or anything wrong, still gets the App's answer.

mod in_process;

use concord_runtime::http::local::LocalServer;
use concord_runtime::node::Node;
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request on a connection of its own; the status, the content type
/// and the JSON body of the answer.
async fn exchange(server: SocketAddr, head: &str, body: &str) -> (u16, String, Value) {
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let request = format!("{head}\r\nhost: test\r\nconnection: close\r\n\r\n{body}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(length) = response.parse(&answer).unwrap() else {
        panic!("a partial answer: {}", String::from_utf8_lossy(&answer));
    };
    let content_type = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .unwrap_or_default();
    let body = serde_json::from_slice(&answer[length..]).unwrap_or(Value::Null);
    (response.code.unwrap(), content_type, body)
}

/// A put of `body` as JSON, with `Content-Length` set.
fn put(path: &str, body: &str) -> (String, String) {
    let head =
        format!("PUT {path} HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: {}", body.len());
    (head, body.to_owned())
}

/// A three-node cluster under `data`, and its leader.
async fn cluster(data: &std::path::Path) -> (Vec<Node>, Node) {
    let nodes = in_process::cluster(3, data).await;
    let leader = in_process::leader(&nodes).await;
    (nodes, leader)
}

async fn serve(node: Node) -> LocalServer {
    LocalServer::start(node, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

#[actix::test]
async fn a_plain_put_is_answered_as_the_app_answers_a_put() {
    let data = tempfile::tempdir().unwrap();
    let (_nodes, leader) = cluster(data.path()).await;
    let server = serve(leader).await;
    let address = server.address();

    // Plain: the front answers it. With a query: the App does.
    let (head, body) = put("/kv/k", r#"{"value":"one"}"#);
    let (status, content_type, plain) = exchange(address, &head, &body).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"), "{plain}");
    assert_eq!(plain.as_object().unwrap().keys().collect::<Vec<_>>(), ["revision", "succeeded"]);
    let (head, body) = put("/kv/k?prev_kv=false", r#"{"value":"two"}"#);
    let (status, app_type, app) = exchange(address, &head, &body).await;
    assert_eq!((status, app_type), (200, content_type));
    assert_eq!(app["succeeded"], plain["succeeded"]);
    assert!(app["revision"].as_u64() > plain["revision"].as_u64(), "{plain} then {app}");

    // What the plain put wrote is what a read (the App's) finds.
    let (head, body) = put("/kv/plain-key_1.~", r#"{"value":"written"}"#);
    assert_eq!(exchange(address, &head, &body).await.0, 200);
    let (status, _, read) = exchange(address, "GET /kv/plain-key_1.~ HTTP/1.1", "").await;
    assert_eq!((status, read["value"].as_str()), (200, Some("written")), "{read}");

    // A key to percent-decode goes to the App, which decodes it.
    let (head, body) = put("/kv/a%20b", r#"{"value":"spaced"}"#);
    assert_eq!(exchange(address, &head, &body).await.0, 200);
    let (status, _, read) = exchange(address, "GET /kv/a%20b HTTP/1.1", "").await;
    assert_eq!((status, read["key"].as_str(), read["value"].as_str()), (200, Some("a b"), Some("spaced")));
    server.stop().await;
}

#[actix::test]
async fn a_bad_plain_put_gets_the_apps_error_and_the_server_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let (_nodes, leader) = cluster(data.path()).await;
    let server = serve(leader).await;
    let address = server.address();
    let limit = concord_runtime::config::NodeConfig::default().http_body_bytes_max;
    let large = format!(r#"{{"value":"{}"}}"#, "x".repeat(limit));
    let cases = [
        (put("/kv/k", r#"{"value":"#), 400, "invalid JSON body"),
        (put("/kv/k", r#"{"value":"v","other":1}"#), 400, "unknown field `other`"),
        (put("/kv/k", r#"{"value":7}"#), 400, "invalid JSON body"),
        (put("/kv/k", &large), 413, "larger than"),
        (
            (
                "PUT /kv/k HTTP/1.1\r\ncontent-type: text/plain\r\ncontent-length: 15".to_owned(),
                r#"{"value":"one"}"#.to_owned(),
            ),
            400,
            "Content-Type",
        ),
        (put(&format!("/kv/{}", "k".repeat(1_025)), r#"{"value":"one"}"#), 400, "a key has"),
    ];
    for ((head, body), status, says) in cases {
        let (got, _, error) = exchange(address, &head, &body).await;
        let message = error["message"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{head}: {error}");
        assert!(message.contains(says), "{head}: {message:?} should say {says:?}");
    }
    let (head, body) = put("/kv/k", r#"{"value":"after"}"#);
    assert_eq!(exchange(address, &head, &body).await.0, 200, "still serving");
    server.stop().await;
}

#[actix::test]
async fn a_plain_put_sent_to_a_follower_is_forwarded_to_the_leader() {
    let data = tempfile::tempdir().unwrap();
    let (nodes, leader) = cluster(data.path()).await;
    let follower = nodes.iter().find(|n| n.config().id != leader.config().id).unwrap().clone();
    let server = serve(follower).await;
    let (head, body) = put("/kv/forwarded", r#"{"value":"here"}"#);
    let (status, _, answer) = exchange(server.address(), &head, &body).await;
    assert_eq!(status, 200, "{answer}");
    let leader_server = serve(leader).await;
    let (status, _, read) = exchange(leader_server.address(), "GET /kv/forwarded HTTP/1.1", "").await;
    assert_eq!((status, read["value"].as_str()), (200, Some("here")), "{read}");
    server.stop().await;
    leader_server.stop().await;
}
