//! Bad HTTP input gets a 4xx with a JSON error that says what is wrong, and
//! the server keeps serving.

use actix_web::{test, web, App, HttpResponse};
use concord_runtime::http::errors::{
    extractor_configs, method_not_allowed, not_found, path_and_query_configs,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Put {
    value: String,
}

async fn put(body: web::Json<Put>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "stored": body.value }))
}

macro_rules! app {
    () => {{
        let (json, payload) = extractor_configs(64);
        let (path, query) = path_and_query_configs();
        test::init_service(
            App::new()
                .app_data(json)
                .app_data(payload)
                .app_data(path)
                .app_data(query)
                .service(
                    web::resource("/kv/{key}")
                        .route(web::put().to(put))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found)),
        )
        .await
    }};
}

async fn call(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    request: test::TestRequest,
) -> (u16, Value) {
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status().as_u16();
    let body: Value = test::read_body_json(response).await;
    (status, body)
}

#[actix_web::test]
async fn each_bad_input_gets_a_json_4xx_and_the_server_keeps_serving() {
    let app = app!();
    let cases = [
        (
            test::TestRequest::put()
                .uri("/kv/a")
                .insert_header(("content-type", "application/json"))
                .set_payload("{not json"),
            400,
            "bad_request",
            "invalid JSON body",
        ),
        (
            test::TestRequest::put().uri("/kv/a").set_json(serde_json::json!({"valeu": "x"})),
            400,
            "bad_request",
            "missing field `value`",
        ),
        (
            test::TestRequest::put()
                .uri("/kv/a")
                .insert_header(("content-type", "text/plain"))
                .set_payload("{}"),
            400,
            "bad_request",
            "Content-Type",
        ),
        (
            test::TestRequest::put().uri("/kv/a").set_json(serde_json::json!({"value": "x".repeat(100)})),
            413,
            "payload_too_large",
            "larger than 64 bytes",
        ),
        (test::TestRequest::get().uri("/nowhere"), 404, "not_found", "no route GET /nowhere"),
        (test::TestRequest::delete().uri("/kv/a"), 405, "method_not_allowed", "DELETE"),
    ];
    for (request, status, code, message) in cases {
        let (got_status, body) = call(&app, request).await;
        assert_eq!(got_status, status, "{body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].as_str().unwrap().contains(message), "{body}");
        // A good request still works after each bad one.
        let (ok, body) =
            call(&app, test::TestRequest::put().uri("/kv/a").set_json(serde_json::json!({"value": "v"})))
                .await;
        assert_eq!((ok, body["stored"].as_str()), (200, Some("v")));
    }
}
