//! `/kv` on a three-node cluster in one process: a put answers without the
//! value it replaced unless asked (`?prev_kv=true`, as etcd answers); a
//! delete and a compare-and-swap always name it.

mod in_process;

use actix_web::test;
use serde_json::{json, Value};

#[actix::test]
async fn a_put_names_the_value_it_replaced_only_when_asked() {
    let data = tempfile::tempdir().unwrap();
    let nodes = in_process::cluster(3, data.path()).await;
    let app = in_process::api(in_process::leader(&nodes).await).await;
    let call = async |request: test::TestRequest| -> (u16, Value) {
        let response = test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        (status, test::read_body_json(response).await)
    };
    let put = |uri: &str, value: &str| test::TestRequest::put().uri(uri).set_json(json!({ "value": value }));

    let (status, first) = call(put("/kv/k", "one")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first.as_object().unwrap().keys().collect::<Vec<_>>(), ["revision", "succeeded"]);
    let (_, second) = call(put("/kv/k", "two")).await;
    assert_eq!(second.get("previous"), None, "not asked: {second}");
    let (status, third) = call(put("/kv/k?prev_kv=true", "three")).await;
    assert_eq!(status, 200);
    assert_eq!(third["previous"]["value"], "two", "{third}");
    assert_eq!(third["previous"]["revision"], second["revision"]);
    let (status, bad) = call(put("/kv/k?prev_kv=perhaps", "four")).await;
    assert_eq!((status, bad["error"].as_str()), (400, Some("bad_request")), "{bad}");

    let (status, deleted) = call(test::TestRequest::delete().uri("/kv/k")).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["previous"]["value"], "three", "a delete names what it removed: {deleted}");
    let cas = test::TestRequest::post().uri("/kv/k/cas").set_json(json!({ "expected": "x", "new": "y" }));
    let (status, conflict) = call(cas).await;
    assert_eq!(status, 409);
    assert_eq!(conflict["previous"], Value::Null, "the key is absent: {conflict}");
}
