//! The error answers of the OpenAPI document, added where the request path says they happen, so
//! no handler has to list what every handler of its kind answers (and none can forget it):
//!
//! | answer | on every operation that ... |
//! |---|---|
//! | 401 `unauthenticated`, `invalid_token` | needs a bearer token |
//! | 403 `forbidden` | needs a token of a kind (patient or staff): all but `/api/v1/auth/...` |
//! | 404 `not_found` | has a path parameter (a malformed id is not found too) |
//! | 400 `malformed_json`, `bad_request` | has a body or a query string |
//! | 408, 413 | has a body (body read timeout, body limit) |
//! | 415 `unsupported_media_type` | has a JSON body read by `ApiJson` |
//! | 422 `invalid_body`, `invalid_field` | has a JSON body read by `ApiJson`, or a number or date in its query |
//! | 414, 429, 431 | all (URI limit, per-IP rate limit and connection cap, head limit) |
//!
//! Each is a shared response (`#/components/responses/...`) with the `ErrorBody` schema. An
//! answer a handler documents itself keeps the handler's description.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::{Content, OpenApi, RefOr, Response, ResponseBuilder};

/// Routes that read their body as raw bytes (a signature covers them): no content-type check.
const RAW_BODY_ROUTES: &[&str] = &[
    "/api/v1/payments/wechat/notify",
    "/api/v1/lab/exams/{id}/status",
    "/api/v1/his/visits/{external_id}",
    "/api/v1/his/records/{external_id}",
    "/api/v1/his/exam-results/{external_id}",
];

/// The shared error answers: status, component name, description.
const SHARED: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "Malformed request: JSON that does not parse (`malformed_json`), a bad query string or body (`bad_request`)."),
    ("401", "Unauthorized", "No bearer token (`unauthenticated`), or one that is unknown, expired or revoked (`invalid_token`)."),
    ("403", "Forbidden", "The token's account or role may not do this (`forbidden`)."),
    ("404", "NotFound", "No such resource, or not the caller's (`not_found`); a malformed id is not found either."),
    ("408", "RequestTimeout", "The body did not arrive within the body read timeout (`request_timeout`)."),
    ("413", "PayloadTooLarge", "The body is larger than the body limit (`payload_too_large`)."),
    ("414", "UriTooLong", "The URI is longer than the server accepts (`uri_too_long`)."),
    ("415", "UnsupportedMediaType", "The body is not sent as `application/json` (`unsupported_media_type`)."),
    ("422", "Unprocessable", "JSON of the wrong shape (`invalid_body`), or a field that fails validation or is out of its range (`invalid_field`, with `field`)."),
    ("429", "TooManyRequests", "Over a rate limit (`rate_limited`, with `Retry-After`) or the per-address connection cap (`too_many_connections`)."),
    ("431", "HeadersTooLarge", "The request's head is larger than the server accepts (`headers_too_large`)."),
];

/// Adds the shared error answers to every operation of `doc` (see the module's description).
pub fn document_errors(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in SHARED {
        let content = Content::new(Some(Ref::from_schema_name("ErrorBody")));
        let response: Response =
            ResponseBuilder::new().description(*description).content("application/json", content).build();
        components.responses.insert((*name).to_string(), RefOr::T(response));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in operations(item) {
            for status in error_statuses(path, op) {
                let name = SHARED.iter().find(|(s, _, _)| *s == status).map(|(_, n, _)| *n).expect("a shared answer");
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The shared error answers an operation can give.
fn error_statuses(path: &str, op: &Operation) -> Vec<&'static str> {
    let mut out = vec!["414", "429", "431"];
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        out.push("401");
        if !path.starts_with("/api/v1/auth/") {
            out.push("403");
        }
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    if path.contains('{') || params.iter().any(|p| p.parameter_in == ParameterIn::Path) {
        out.push("404");
    }
    let query: Vec<_> = params.iter().filter(|p| p.parameter_in == ParameterIn::Query).collect();
    if !query.is_empty() {
        out.push("400");
        // Numbers and dates in a query have ranges.
        let ranged = query.iter().any(|p| {
            let s = serde_json::to_string(&p.schema).unwrap_or_default();
            s.contains("\"minimum\"") || s.contains("\"format\":\"date\"")
        });
        if ranged {
            out.push("422");
        }
    }
    if let Some(body) = &op.request_body {
        out.extend(["400", "408", "413"]);
        if body.content.contains_key("application/json") && !RAW_BODY_ROUTES.contains(&path) {
            out.extend(["415", "422"]);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_the_answers_of_its_kind() {
        let (_, mut doc) = crate::api(true);
        document_errors(&mut doc);
        let json = serde_json::to_value(&doc).unwrap();
        let responses = |path: &str, method: &str| -> Vec<String> {
            let r = json["paths"][path][method]["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}"));
            r.keys().cloned().collect()
        };
        let me = responses("/api/v1/me/patients", "post");
        for s in ["400", "401", "403", "408", "413", "415", "422", "429"] {
            assert!(me.contains(&s.to_string()), "POST /api/v1/me/patients lacks {s}: {me:?}");
        }
        let staff = responses("/api/v1/admin/sessions/{id}", "patch");
        for s in ["401", "403", "404", "415", "422"] {
            assert!(staff.contains(&s.to_string()), "PATCH /api/v1/admin/sessions/{{id}} lacks {s}: {staff:?}");
        }
        let notify = responses("/api/v1/payments/wechat/notify", "post");
        assert!(notify.contains(&"413".to_string()) && !notify.contains(&"415".to_string()), "{notify:?}");
        let health = responses("/healthz", "get");
        assert!(!health.contains(&"401".to_string()) && health.contains(&"429".to_string()), "{health:?}");
        let search = responses("/api/v1/search", "get");
        assert!(search.contains(&"400".to_string()) && !search.contains(&"422".to_string()), "{search:?}");
        let doctors = responses("/api/v1/doctors", "get");
        assert!(doctors.contains(&"422".to_string()), "a ranged limit: {doctors:?}");
        assert!(json["components"]["responses"]["Unprocessable"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with("/ErrorBody")));
    }
}
