//! The OpenAPI 3.1 document of the control plane, generated from the handlers' `#[utoipa::path]`
//! annotations and served at `GET /openapi.json`.
//!
//! Handlers are registered with utoipa-axum's `routes!` (see [`super::router`]), so a route and
//! its documentation cannot drift apart. This module adds what is common to all of them:
//!
//! - security schemes: `bearer` (a viewer's HS256 JWT; admin operations list the `admin` role
//!   in their requirement, `{"bearer": ["admin"]}`, and need it in the JWT's `roles` claim), `edge_token` (the edges' shared service token, also a bearer
//!   token) and `speke` (the SPEKE v2 key provider's shared credential);
//! - the `{"error","message"}` body ([`ErrorResponse`]) on every 4xx/5xx response documented
//!   without a body (a handler that answers some errors in another format, like SPEKE's
//!   `text/plain` refusals, documents those with their content type);
//! - the answers the shared extractors give, so no operation can forget them: a 500 on every
//!   operation; 401 and 503 (`database_busy`) on every authenticated one; 403
//!   (`admin_required`) on every one whose security is `{"bearer": ["admin"]}` (the [`Admin`]
//!   extractor's operations); 400, 413 and 415 on every one taking a JSON body ([`ApiJson`]).
//!
//! `tests/openapi_conformance.rs` calls every operation of the document in the ways that
//! reach those answers and fails on a status the operation does not declare.
//!
//! [`Admin`]: super::extract::Admin
//! [`ApiJson`]: super::extract::ApiJson

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error body the API answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// Stable, machine-readable reason code, e.g. `not_found`, `invalid_limit`.
    #[schema(example = "not_found")]
    pub error: String,
    /// One human-readable sentence saying what to do.
    pub message: String,
}

/// The document's fixed parts; operations are added by the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "control-plane",
        description = "Secure-streaming control plane: uploads, transcoding, key custody, \
                       entitlements, organizations, subscriptions, and the internal API of the \
                       edges. Every error is `{\"error\", \"message\"}` JSON.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ErrorResponse)),
    modifiers(&Common),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "media", description = "Uploads, transcoding and manifests (viewer JWT)"),
        (name = "orgs", description = "Organizations, projects and membership"),
        (name = "subscriptions", description = "Subscription tiers and user subscriptions"),
        (name = "admin", description = "Operator endpoints (JWT with the admin role)"),
        (name = "keys", description = "Content-key lifecycle and audit (admin)"),
        (name = "internal", description = "Internal API of the edges (service token)"),
        (name = "speke", description = "SPEKE v2 key provider"),
    )
)]
pub struct ApiDoc;

struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |desc: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(desc.to_string()))
                    .build(),
            )
        };
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A viewer's HS256 JWT (issuer and audience from [jwt]). Operations \
                         whose requirement lists the `admin` role also need `admin` in its \
                         `roles` claim (else 403 `admin_required`)."
                            .to_string(),
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "edge_token",
            bearer("The edges' shared service token ([internal] service_token_file)."),
        );
        components.add_security_scheme(
            "speke",
            bearer("The SPEKE key provider's shared credential ([speke])."),
        );
    }
}

/// The finished document: [`ApiDoc`] plus the operations in `routes`, with the common error
/// responses filled in.
pub fn finish(mut doc: OpenApiDoc) -> OpenApiDoc {
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ]
        .into_iter()
        .flatten()
        {
            complete_operation(op);
        }
    }
    doc
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorResponse",
                ))))
                .build(),
        )
        .build()
}

fn complete_operation(op: &mut Operation) {
    let requirements = op.security.as_deref().unwrap_or_default();
    let authenticated = !requirements.is_empty();
    let admin_only = requirements.iter().any(needs_admin_role);
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"));
    let responses: &mut BTreeMap<String, RefOr<Response>> = &mut op.responses.responses;
    // Every 4xx/5xx documented without a body gets the error body (a handler that answers
    // some errors in another format, like SPEKE's text/plain, documents those with content).
    for (status, response) in responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let RefOr::T(r) = response {
            if r.content.is_empty() {
                *response = RefOr::T(error_response(&r.description));
            }
        }
    }
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.into())
            .or_insert_with(|| RefOr::T(error_response(description)));
    };
    if json_body {
        // What `ApiJson` answers for any JSON body (see `extract::JsonBody`).
        add(
            "400",
            "Malformed JSON or the wrong shape (`invalid_json`, `invalid_request`)",
        );
        add(
            "413",
            "Body larger than this endpoint's limit (`payload_too_large`; README: request body limits)",
        );
        add(
            "415",
            "Not `Content-Type: application/json` (`unsupported_media_type`)",
        );
    }
    if authenticated {
        add("401", "Missing or invalid credentials");
        add("503", "The database is busy (`database_busy`); retry");
    }
    if admin_only {
        add("403", "The JWT lacks the admin role (`admin_required`)");
    }
    add("500", "Internal error (details in the logs)");
}

/// True for `{"bearer": ["admin"]}`: the JWT must carry the admin role (an OpenAPI 3.1 role
/// list on a non-OAuth scheme).
fn needs_admin_role(requirement: &SecurityRequirement) -> bool {
    serde_json::to_value(requirement)
        .ok()
        .and_then(|v| v.get("bearer").cloned())
        .is_some_and(|roles| {
            roles
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r == ADMIN_ROLE))
        })
}

/// The role admin operations list under the `bearer` scheme.
pub const ADMIN_ROLE: &str = "admin";
