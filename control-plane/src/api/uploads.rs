//! `POST /files/upload`: multipart uploads streamed to `storage.uploads_dir`.
//!
//! Fields named `files` or `file` are written chunk by chunk to `{uploads_dir}/{fileId}` (the
//! client's file name is metadata only, never a path). The request's total is held to
//! `storage.max_upload_bytes`: over it, every file written by the request is deleted and the
//! answer is 413 `payload_too_large`. A client that stops sending part-way (closes the
//! connection) gets its partial files deleted too; that is 400 `upload_aborted`, logged at info,
//! not a server error.

use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{content_length, Viewer};
use super::AppState;
use crate::db::files::NewFile;
use crate::db::now;

/// Room for multipart boundaries and part headers on top of the file bytes.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadedFile {
    file_id: Uuid,
    name: String,
    size_bytes: i64,
    mime_type: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadResponse {
    files: Vec<UploadedFile>,
}

/// The multipart form of an upload (documentation only: the handler streams the parts).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One or more files, in fields named `files` (or `file`).
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    files: Vec<Vec<u8>>,
}

struct Saved {
    id: Uuid,
    name: String,
    mime_type: String,
    size: u64,
    path: PathBuf,
}

/// `POST /files/upload`.
#[utoipa::path(
    post,
    path = "/files/upload",
    tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored; one entry per file part", body = UploadResponse),
        (status = 400, description = "Not a multipart body, or no file part"),
        (status = 413, description = "Over storage.max_upload_bytes (`payload_too_large`)"),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(app): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let limit = app.config.storage.max_upload_bytes;
    if content_length(&headers).is_some_and(|len| len > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(
            "invalid_multipart",
            format!("Send the upload as multipart/form-data: {}", e.body_text()),
        )
    })?;
    let dir = &app.config.storage.uploads_dir;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(ApiError::internal)?;

    let mut saved: Vec<Saved> = Vec::new();
    let outcome = receive_files(&mut multipart, dir, limit, &mut saved).await;
    if let Err(e) = outcome {
        remove_all(&saved).await;
        return Err(e);
    }
    if saved.is_empty() {
        return Err(ApiError::bad_request(
            "no_file",
            "Send the video in a multipart field named `files` or `file`.",
        ));
    }

    let mut files = Vec::with_capacity(saved.len());
    for s in &saved {
        let path = s.path.to_string_lossy();
        let record = app
            .db
            .insert_file(
                &NewFile {
                    id: s.id,
                    owner_id: viewer.user_id(),
                    name: &s.name,
                    mime_type: &s.mime_type,
                    size_bytes: i64::try_from(s.size).unwrap_or(i64::MAX),
                    storage_path: &path,
                },
                now(),
            )
            .await;
        match record {
            Ok(r) => files.push(UploadedFile {
                file_id: r.id,
                name: r.name,
                size_bytes: r.size_bytes,
                mime_type: r.mime_type,
            }),
            Err(e) => {
                remove_all(&saved).await;
                return Err(e.into());
            }
        }
        tracing::info!(userId = %viewer.user_id(), fileId = %s.id, sizeBytes = s.size, "upload stored");
    }
    Ok((StatusCode::CREATED, Json(UploadResponse { files })))
}

async fn receive_files(
    multipart: &mut Multipart,
    dir: &Path,
    limit: u64,
    saved: &mut Vec<Saved>,
) -> Result<(), ApiError> {
    let mut total = 0u64;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if !matches!(field.name(), Some("files") | Some("file")) {
            continue;
        }
        let id = Uuid::new_v4();
        let name = display_name(field.file_name());
        let mime_type = mime_type(field.content_type(), &name);
        let path = dir.join(id.to_string());
        // Registered before writing so a failure part-way removes the partial file too.
        saved.push(Saved {
            id,
            name,
            mime_type,
            size: 0,
            path: path.clone(),
        });
        let size = write_field(field, &path, &mut total, limit).await?;
        if let Some(last) = saved.last_mut() {
            last.size = size;
        }
    }
    Ok(())
}

async fn write_field(
    mut field: Field<'_>,
    path: &Path,
    total: &mut u64,
    limit: u64,
) -> Result<u64, ApiError> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(ApiError::internal)?;
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        size += chunk.len() as u64;
        *total += chunk.len() as u64;
        if *total > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    Ok(size)
}

async fn remove_all(saved: &[Saved]) {
    for s in saved {
        if let Err(e) = tokio::fs::remove_file(&s.path).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(fileId = %s.id, error = %e, "could not remove a partial upload");
            }
        }
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    // axum answers 500 for exactly one multipart failure: the request body stream broke (the
    // client closed the connection or reset the stream part-way). That is the client's doing:
    // a 400, logged without alarm.
    if e.status() == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::info!(error = %e.body_text(), "upload aborted by the client; partial files removed");
        return ApiError::bad_request(
            "upload_aborted",
            "The upload ended before its multipart body was complete; nothing was stored.",
        );
    }
    ApiError::new(
        e.status(),
        "invalid_multipart",
        format!("The multipart body could not be read: {}", e.body_text()),
    )
}

/// The client's file name reduced to its last component, without control characters.
fn display_name(raw: Option<&str>) -> String {
    let base = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect::<String>();
    let base = base.trim();
    if base.is_empty() || base == "." || base == ".." {
        "upload".into()
    } else {
        base.to_string()
    }
}

fn mime_type(declared: Option<&str>, name: &str) -> String {
    if let Some(m) = declared.filter(|m| !m.is_empty() && *m != "application/octet-stream") {
        return m.chars().take(255).collect();
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4") | Some("m4v") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_metadata_only() {
        assert_eq!(display_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(display_name(Some("C:\\videos\\a.mp4")), "a.mp4");
        assert_eq!(display_name(Some("..")), "upload");
        assert_eq!(display_name(None), "upload");
        assert_eq!(display_name(Some("a\u{0}b.mp4")), "ab.mp4");
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type(Some("video/mp4"), "x"), "video/mp4");
        assert_eq!(mime_type(None, "clip.MOV"), "video/quicktime");
        assert_eq!(
            mime_type(Some("application/octet-stream"), "a.mp4"),
            "video/mp4"
        );
        assert_eq!(mime_type(None, "noext"), "application/octet-stream");
    }
}
