//! The OpenAPI 3.1 document of the control plane, generated from the handlers' `#[utoipa::path]`
//! annotations and served at `GET /openapi.json`.
//!
//! Handlers are registered with utoipa-axum's `routes!` (see [`super::router`]), so a route and
//! its documentation cannot drift apart. This module adds what is common to all of them:
//!
//! - security schemes: `bearer` (a viewer's HS256 JWT; admin endpoints also need the `admin`
//!   role in its `roles` claim), `edge_token` (the edges' shared service token, also a bearer
//!   token) and `speke` (the SPEKE v2 key provider's shared credential);
//! - the `{"error","message"}` body ([`ErrorResponse`]) on every 4xx/5xx response documented
//!   without a body (except for operations taking a non-JSON body, such as SPEKE's XML, whose
//!   handlers document their error formats themselves), and a 500 and (for authenticated
//!   operations) a 401 on every operation, since any handler can answer those.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
                        "A viewer's HS256 JWT (issuer and audience from [jwt]). Admin \
                         endpoints also need `admin` in its `roles` claim (else 403 \
                         `admin_required`)."
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
    let authenticated = op.security.as_ref().is_some_and(|reqs| !reqs.is_empty());
    // An operation taking a body other than JSON or a multipart form (SPEKE's CPIX XML) may
    // answer some errors in its own format: its handler documents those itself.
    let own_error_format = op.request_body.as_ref().is_some_and(|body| {
        body.content
            .keys()
            .any(|ct| ct != "application/json" && ct != "multipart/form-data")
    });
    let responses: &mut BTreeMap<String, RefOr<Response>> = &mut op.responses.responses;
    // Every 4xx/5xx documented without a body gets the error body.
    for (status, response) in responses.iter_mut() {
        if own_error_format {
            break;
        }
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let RefOr::T(r) = response {
            if r.content.is_empty() {
                *response = RefOr::T(error_response(&r.description));
            }
        }
    }
    if authenticated {
        responses
            .entry("401".into())
            .or_insert_with(|| RefOr::T(error_response("Missing or invalid credentials")));
    }
    responses
        .entry("500".into())
        .or_insert_with(|| RefOr::T(error_response("Internal error (details in the logs)")));
}
