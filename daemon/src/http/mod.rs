//! The HTTP edge every service shares: the one error type and its JSON
//! shape, extractors, authentication, health and readiness, telemetry, and
//! the limits that keep load and abuse from reaching the backends.

pub mod auth;
pub mod edge;
pub mod error;
pub mod extract;
pub mod health;
pub mod limits;
pub mod readiness;
pub mod telemetry;

/// `GET /openapi.json`: a service's OpenAPI document `D`, served on its port.
pub fn openapi_json<D, S>() -> axum::routing::MethodRouter<S>
where
    D: utoipa::OpenApi + 'static,
    S: Clone + Send + Sync + 'static,
{
    axum::routing::get(|| async { axum::Json(D::openapi()) })
}

/// Checks a committed OpenAPI document (`docs/{file}`) against the code and
/// that every reference in it resolves; with `UPDATE_SNAPSHOTS` set, writes
/// it. Returns the document's text.
#[cfg(test)]
pub(crate) fn openapi_snapshot(doc: utoipa::openapi::OpenApi, file: &str) -> String {
    let doc = doc.to_pretty_json().expect("serialisable") + "\n";
    let path = format!("{}/../docs/{file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &doc).expect("write the OpenAPI document");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == doc,
        "docs/{file} is out of date; run UPDATE_SNAPSHOTS=1 cargo test -p walletctl-daemon and review the diff"
    );
    let value: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
    for part in doc.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap_or_default();
        assert!(
            value["components"]["schemas"][name].is_object(),
            "dangling $ref to {name}"
        );
    }
    doc
}
