//! The AWS Elemental MediaConvert backend: the API client, its errors and the S3 upload.
//!
//! - [`settings`] builds the job settings (pure).
//! - [`MediaConvert`] wraps `aws-sdk-mediaconvert` and `aws-sdk-s3` on rustls/ring (the same
//!   HTTP client as the KMS custody backend). Endpoint discovery: unless an explicit
//!   `endpoint_url` is configured (or `discover_endpoint` says otherwise), the first call runs
//!   `DescribeEndpoints` and the account endpoint it returns is used for the life of the process
//!   (AWS now also accepts the regional endpoint; discovery keeps older accounts working).
//! - Every failure is a [`CallError`] that says whether trying again later can help
//!   (throttling, 5xx, timeouts, connection failures) or not (400 BadRequest, 403 Forbidden,
//!   404 NotFound, 409 Conflict, other 4xx). Messages are safe to store as a job's reason.
//! - [`redact`] keeps the static content key, which MediaConvert echoes, out of the SDK's logs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_mediaconvert::config::http::HttpResponse;
use aws_sdk_mediaconvert::config::SharedHttpClient;
use aws_sdk_mediaconvert::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_mediaconvert::types::{JobSettings, JobStatus, StatusUpdateInterval};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::config::MediaConvertConfig;

pub mod redact;
pub mod settings;

pub use redact::redact_static_keys;
pub use settings::*;

/// User metadata keys on every job: which title, which of our jobs, which content key.
pub const META_FILE_ID: &str = "fileId";
pub const META_JOB_ID: &str = "jobId";
pub const META_KEY_ID: &str = "keyId";
/// Longest service message kept in a job's reason.
const MAX_REASON_CHARS: usize = 500;

/// A failed call, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub retryable: bool,
    pub message: String,
}

impl CallError {
    fn fail(message: impl Into<String>) -> Self {
        CallError {
            retryable: false,
            message: message.into(),
        }
    }

    fn retry(message: impl Into<String>) -> Self {
        CallError {
            retryable: true,
            message: message.into(),
        }
    }
}

/// Whether an HTTP status / error code from the service is worth retrying.
pub fn is_retryable(status: u16, code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "TooManyRequestsException"
                | "ThrottlingException"
                | "Throttling"
                | "SlowDown"
                | "RequestTimeout"
                | "InternalServerErrorException"
                | "InternalError"
                | "ServiceUnavailable"
        )
    ) || status == 429
        || status >= 500
}

/// Maps an SDK error onto a [`CallError`] naming the service and operation.
fn classify<E>(what: &str, err: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ConstructionFailure(_) => CallError::fail(format!(
            "{what}: the request could not be built: {}",
            clean(&DisplayErrorContext(&err).to_string())
        )),
        SdkError::TimeoutError(_) => CallError::retry(format!("{what}: timed out")),
        SdkError::DispatchFailure(_) => CallError::retry(format!(
            "{what}: cannot reach the service: {}",
            clean(&DisplayErrorContext(&err).to_string())
        )),
        SdkError::ResponseError(_) => {
            CallError::retry(format!("{what}: the response could not be read"))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = err.code().map(str::to_string);
            let message = err.message().map(clean).unwrap_or_default();
            let label = code.clone().unwrap_or_else(|| format!("HTTP {status}"));
            let text = if message.is_empty() {
                format!("{what}: {label}")
            } else {
                format!("{what}: {label}: {message}")
            };
            CallError {
                retryable: is_retryable(status, code.as_deref()),
                message: text,
            }
        }
        _ => CallError::retry(format!(
            "{what}: {}",
            clean(&DisplayErrorContext(&err).to_string())
        )),
    }
}

/// A message fit for a job's reason: one line, no control characters, bounded.
pub fn clean(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    match trimmed.char_indices().nth(MAX_REASON_CHARS) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_string(),
    }
}

/// What `GetJob` says about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Submitted or progressing; `percent` once MediaConvert reports it.
    Running {
        percent: Option<i32>,
    },
    Complete,
    /// ERROR or CANCELED, with the service's reason.
    Failed {
        reason: String,
    },
}

/// A job's state plus the content key id it was submitted with (its `keyId` user metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub state: JobState,
    pub key_id: Option<Uuid>,
}

/// Settings derived from `[transcode.mediaconvert]` plus what the job needs from elsewhere.
#[derive(Debug, Clone)]
pub struct MediaConvertSettings {
    pub config: MediaConvertConfig,
    /// The edge's public base URL (static key URLs point there).
    pub edge_base: String,
    pub renditions: Vec<u32>,
    pub segment_seconds: u32,
}

impl MediaConvertSettings {
    /// `s3://{output_bucket}/{output_prefix}{fileId}/`.
    pub fn output_dir(&self, file_id: Uuid) -> String {
        format!(
            "s3://{}/{}{file_id}/",
            self.config.output_bucket, self.config.output_prefix
        )
    }

    /// The S3 key a source is uploaded to: `{input_prefix}{fileId}/source{.ext}`, the extension
    /// taken from the uploaded file's name (MediaConvert goes by it for some containers).
    pub fn input_key(&self, file_id: Uuid, name: &str) -> String {
        let ext = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(|e| format!(".{}", e.to_ascii_lowercase()))
            .unwrap_or_default();
        format!("{}{file_id}/source{ext}", self.config.input_prefix)
    }

    /// The key URL written into the playlists: the edge's key path.
    pub fn key_url(&self, file_id: Uuid, key_id: Uuid) -> String {
        format!(
            "{}/keys/{file_id}/{key_id}",
            self.edge_base.trim_end_matches('/')
        )
    }

    fn discover(&self) -> bool {
        self.config
            .discover_endpoint
            .unwrap_or(self.config.endpoint_url.is_empty())
    }
}

/// Counters for tests and logs.
#[derive(Debug, Default)]
pub struct CallCounts {
    pub describe_endpoints: AtomicU64,
    pub create_job: AtomicU64,
    pub get_job: AtomicU64,
}

/// The MediaConvert and S3 clients.
pub struct MediaConvert {
    settings: MediaConvertSettings,
    sdk: SdkConfig,
    /// The HTTP client of every MediaConvert call.
    redacting: SharedHttpClient,
    /// The client for job calls: the discovered (or configured) endpoint, made once.
    jobs: OnceCell<aws_sdk_mediaconvert::Client>,
    s3: aws_sdk_s3::Client,
    counts: CallCounts,
}

impl std::fmt::Debug for MediaConvert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaConvert")
            .field("endpoint_url", &self.settings.config.endpoint_url)
            .field("discover", &self.settings.discover())
            .finish_non_exhaustive()
    }
}

impl MediaConvert {
    /// Builds the clients; resolves region and credentials (default chain). Makes no call.
    pub async fn new(settings: MediaConvertSettings) -> anyhow::Result<Self> {
        let c = &settings.config;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::v2025_08_07())
            .http_client(http.clone())
            .retry_config(RetryConfig::standard().with_max_attempts(c.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(c.connect_timeout_ms))
                    .build(),
            );
        if !c.region.is_empty() {
            loader = loader.region(Region::new(c.region.clone()));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            anyhow::bail!("transcode.mediaconvert.region: no AWS region (set it or AWS_REGION)");
        }
        let mut s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(c.s3_force_path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(c.connect_timeout_ms))
                    .read_timeout(Duration::from_millis(c.operation_timeout_ms))
                    .build(),
            );
        if !c.s3_endpoint_url.is_empty() {
            s3 = s3.endpoint_url(c.s3_endpoint_url.clone());
        }
        Ok(MediaConvert {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            redacting: SharedHttpClient::new(redact::RedactingClient::new(http)),
            sdk,
            jobs: OnceCell::new(),
            counts: CallCounts::default(),
            settings,
        })
    }

    pub fn settings(&self) -> &MediaConvertSettings {
        &self.settings
    }

    /// How many calls of each kind were made.
    pub fn counts(&self) -> &CallCounts {
        &self.counts
    }

    fn client_for(&self, endpoint: Option<&str>) -> aws_sdk_mediaconvert::Client {
        let mut b = aws_sdk_mediaconvert::config::Builder::from(&self.sdk)
            .http_client(self.redacting.clone())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(
                        self.settings.config.connect_timeout_ms,
                    ))
                    .operation_timeout(Duration::from_millis(
                        self.settings.config.operation_timeout_ms,
                    ))
                    .build(),
            );
        if let Some(url) = endpoint {
            b = b.endpoint_url(url);
        }
        aws_sdk_mediaconvert::Client::from_conf(b.build())
    }

    /// The client for job calls; runs endpoint discovery the first time (a failure is not
    /// cached, the next call tries again).
    async fn jobs(&self) -> Result<&aws_sdk_mediaconvert::Client, CallError> {
        self.jobs
            .get_or_try_init(|| async {
                let configured = (!self.settings.config.endpoint_url.is_empty())
                    .then_some(self.settings.config.endpoint_url.as_str());
                if !self.settings.discover() {
                    return Ok(self.client_for(configured));
                }
                let base = self.client_for(configured);
                self.counts
                    .describe_endpoints
                    .fetch_add(1, Ordering::Relaxed);
                // Deprecated by AWS (regional endpoints work now) but still answered; accounts
                // set up before 2022 were told to use their account endpoint.
                #[allow(deprecated)]
                let out = base
                    .describe_endpoints()
                    .mode(aws_sdk_mediaconvert::types::DescribeEndpointsMode::Default)
                    .send()
                    .await
                    .map_err(|e| classify("MediaConvert DescribeEndpoints", e))?;
                let url = out
                    .endpoints()
                    .iter()
                    .find_map(|e| e.url())
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .ok_or_else(|| {
                        CallError::retry("MediaConvert DescribeEndpoints: no endpoint returned")
                    })?
                    .to_string();
                tracing::info!(endpoint = %url, "MediaConvert account endpoint discovered");
                Ok(self.client_for(Some(&url)))
            })
            .await
    }

    /// Uploads the source at `path` to the input bucket; returns its `s3://` URL. Streams from
    /// the file (bounded memory); larger files go up in parts, and a failed multipart upload is
    /// aborted.
    pub async fn upload_source(
        &self,
        file_id: Uuid,
        path: &Path,
        name: &str,
    ) -> Result<String, CallError> {
        let c = &self.settings.config;
        let key = self.settings.input_key(file_id, name);
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| CallError::fail(format!("reading the source: {e}")))?
            .len();
        if size <= c.multipart_threshold_bytes {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| CallError::fail(format!("reading the source: {e}")))?;
            self.s3
                .put_object()
                .bucket(&c.input_bucket)
                .key(&key)
                .content_length(i64::try_from(size).unwrap_or(i64::MAX))
                .body(body)
                .send()
                .await
                .map_err(|e| classify("S3 PutObject", e))?;
        } else {
            self.multipart_upload(&key, path, size).await?;
        }
        Ok(format!("s3://{}/{key}", c.input_bucket))
    }

    async fn multipart_upload(&self, key: &str, path: &Path, size: u64) -> Result<(), CallError> {
        let c = &self.settings.config;
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&c.input_bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("S3 CreateMultipartUpload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| CallError::retry("S3 CreateMultipartUpload: no upload id"))?
            .to_string();
        let result = self.upload_parts(key, &upload_id, path, size).await;
        if result.is_err() {
            // Parts already stored cost money until the upload is aborted.
            if let Err(e) = self
                .s3
                .abort_multipart_upload()
                .bucket(&c.input_bucket)
                .key(key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::warn!(error = %classify("S3 AbortMultipartUpload", e), "could not abort a multipart upload");
            }
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        path: &Path,
        size: u64,
    ) -> Result<(), CallError> {
        let c = &self.settings.config;
        let part_size = c.part_size_bytes;
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < size {
            let len = part_size.min(size - offset);
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| CallError::fail(format!("reading the source: {e}")))?;
            let out = self
                .s3
                .upload_part()
                .bucket(&c.input_bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                .body(body)
                .send()
                .await
                .map_err(|e| classify("S3 UploadPart", e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                    .build(),
            );
            offset += len;
            number += 1;
        }
        self.s3
            .complete_multipart_upload()
            .bucket(&c.input_bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("S3 CompleteMultipartUpload", e))?;
        Ok(())
    }

    /// Copies the object `from` of title `file_id`'s output directory to `to` beside it (a
    /// CMAF job's `master.mpd` to `manifest.mpd`, the name the edge serves).
    pub async fn copy_output(&self, file_id: Uuid, from: &str, to: &str) -> Result<(), CallError> {
        let c = &self.settings.config;
        let dir = format!("{}{file_id}/", c.output_prefix);
        self.s3
            .copy_object()
            .bucket(&c.output_bucket)
            .copy_source(format!("{}/{dir}{from}", c.output_bucket))
            .key(format!("{dir}{to}"))
            .send()
            .await
            .map_err(|e| classify("S3 CopyObject", e))?;
        Ok(())
    }

    /// Submits a job; returns MediaConvert's job id. `token` makes the call idempotent (a retried
    /// `CreateJob` with the same token does not start a second job).
    pub async fn create_job(
        &self,
        settings: JobSettings,
        user_metadata: &[(&str, String)],
        token: &str,
    ) -> Result<String, CallError> {
        let c = &self.settings.config;
        let client = self.jobs().await?;
        let mut request = client
            .create_job()
            .role(&c.role_arn)
            .settings(settings)
            .client_request_token(token)
            .status_update_interval(StatusUpdateInterval::Seconds10);
        if !c.queue.is_empty() {
            request = request.queue(&c.queue);
        }
        for (k, v) in user_metadata {
            request = request.user_metadata(*k, v);
        }
        self.counts.create_job.fetch_add(1, Ordering::Relaxed);
        let out = request
            .send()
            .await
            .map_err(|e| classify("MediaConvert CreateJob", e))?;
        out.job()
            .and_then(|j| j.id())
            .map(str::to_string)
            .ok_or_else(|| CallError::fail("MediaConvert CreateJob: no job id in the response"))
    }

    /// Reads a job's state.
    pub async fn get_job(&self, id: &str) -> Result<JobReport, CallError> {
        let client = self.jobs().await?;
        self.counts.get_job.fetch_add(1, Ordering::Relaxed);
        let out = client
            .get_job()
            .id(id)
            .send()
            .await
            .map_err(|e| classify("MediaConvert GetJob", e))?;
        let job = out
            .job()
            .ok_or_else(|| CallError::retry("MediaConvert GetJob: no job in the response"))?;
        let key_id = job
            .user_metadata()
            .and_then(|m| m.get(META_KEY_ID))
            .and_then(|k| Uuid::parse_str(k).ok());
        let state = match job.status() {
            Some(JobStatus::Complete) => JobState::Complete,
            Some(JobStatus::Error) => {
                let code = job
                    .error_code()
                    .map_or_else(|| "no error code".to_string(), |c| c.to_string());
                let message = job.error_message().map(clean).unwrap_or_default();
                JobState::Failed {
                    reason: format!("MediaConvert job {id} failed: error {code}: {message}"),
                }
            }
            Some(JobStatus::Canceled) => JobState::Failed {
                reason: format!("MediaConvert job {id} was canceled"),
            },
            _ => JobState::Running {
                percent: job.job_percent_complete(),
            },
        };
        Ok(JobReport { state, key_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ContentKey;
    use crate::transcode::plan_renditions;
    use crate::transcode::{Protection, Rendition};
    use aws_sdk_mediaconvert::types::*;

    fn spec<'a>(renditions: &'a [Rendition], encryption: JobEncryption<'a>) -> JobSpec<'a> {
        cmaf_spec(renditions, JobOutput::Hls(encryption))
    }

    fn cmaf_spec<'a>(renditions: &'a [Rendition], output: JobOutput<'a>) -> JobSpec<'a> {
        JobSpec {
            input_url: "s3://in/uploads/f/source.mp4",
            output_dir: "s3://out/hls/f/",
            renditions,
            segment_seconds: 4,
            output,
        }
    }

    #[test]
    fn cmaf_jobs_write_hls_and_dash_with_speke_v2() {
        let ladder = plan_renditions(&[1080, 720], u32::MAX);
        for (scheme, method, hls_system) in [
            (
                Protection::Cbcs,
                CmafEncryptionType::SampleAes,
                playback::speke::FAIRPLAY_SYSTEM_ID,
            ),
            (
                Protection::Cenc,
                CmafEncryptionType::AesCtr,
                playback::speke::WIDEVINE_SYSTEM_ID,
            ),
        ] {
            let s = job_settings(&cmaf_spec(
                &ladder,
                JobOutput::Cmaf(Some(CmafSpeke {
                    scheme,
                    resource_id: "file-1".into(),
                    url: "https://cp/speke/v2/copyProtection".into(),
                    certificate_arn: None,
                })),
            ));
            let group = &s.output_groups()[0];
            let settings = group.output_group_settings().unwrap();
            assert_eq!(settings.r#type(), Some(&OutputGroupType::CmafGroupSettings));
            let cmaf = settings.cmaf_group_settings().unwrap();
            assert_eq!(cmaf.destination(), Some("s3://out/hls/f/master"));
            assert_eq!(
                cmaf.write_hls_manifest(),
                Some(&CmafWriteHlsManifest::Enabled)
            );
            assert_eq!(
                cmaf.write_dash_manifest(),
                Some(&CmafWriteDashManifest::Enabled)
            );
            assert_eq!(cmaf.segment_length(), Some(4));
            let enc = cmaf.encryption().unwrap();
            assert_eq!(enc.encryption_method(), Some(&method));
            assert_eq!(enc.r#type(), Some(&CmafKeyProviderType::Speke));
            let p = enc.speke_key_provider().unwrap();
            assert_eq!(p.resource_id(), Some("file-1"));
            assert_eq!(p.dash_signaled_system_ids(), DASH_SYSTEM_IDS);
            assert_eq!(p.hls_signaled_system_ids(), [hls_system]);
            let contract = p.encryption_contract_configuration().unwrap();
            assert_eq!(
                contract.speke_video_preset(),
                Some(&PresetSpeke20Video::Shared)
            );
            assert_eq!(
                contract.speke_audio_preset(),
                Some(&PresetSpeke20Audio::Shared)
            );
            // One CMAF output per rendition (video only) and one for audio.
            let outputs = group.outputs();
            let names: Vec<_> = outputs.iter().map(|o| o.name_modifier().unwrap()).collect();
            assert_eq!(names, ["_1080p", "_720p", "_audio"]);
            assert!(
                outputs
                    .iter()
                    .all(|o| o.container_settings().unwrap().container()
                        == Some(&ContainerType::Cmfc))
            );
            assert!(outputs[..2]
                .iter()
                .all(|o| o.audio_descriptions().is_empty()));
            assert!(outputs[2].video_description().is_none());
        }
        let clear = job_settings(&cmaf_spec(&ladder, JobOutput::Cmaf(None)));
        let cmaf = clear.output_groups()[0]
            .output_group_settings()
            .unwrap()
            .cmaf_group_settings()
            .unwrap();
        assert!(cmaf.encryption().is_none());
    }

    #[test]
    fn widths_are_sixteen_by_nine_and_even() {
        assert_eq!(rendition_width(1080), 1920);
        assert_eq!(rendition_width(720), 1280);
        assert_eq!(rendition_width(480), 854);
        assert_eq!(rendition_width(360), 640);
    }

    #[test]
    fn clear_job_has_one_hls_group_with_the_ladder() {
        let ladder = plan_renditions(&[1080, 720, 480], u32::MAX);
        let s = job_settings(&spec(&ladder, JobEncryption::None));
        assert_eq!(
            s.inputs()[0].file_input(),
            Some("s3://in/uploads/f/source.mp4")
        );
        let groups = s.output_groups();
        assert_eq!(groups.len(), 1);
        let settings = groups[0].output_group_settings().unwrap();
        assert_eq!(settings.r#type(), Some(&OutputGroupType::HlsGroupSettings));
        let hls = settings.hls_group_settings().unwrap();
        assert_eq!(hls.destination(), Some("s3://out/hls/f/master"));
        assert_eq!(hls.segment_length(), Some(4));
        assert!(hls.encryption().is_none());
        let outputs = groups[0].outputs();
        let dims: Vec<_> = outputs
            .iter()
            .map(|o| {
                let v = o.video_description().unwrap();
                (
                    o.name_modifier().unwrap(),
                    v.width().unwrap(),
                    v.height().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            dims,
            vec![
                ("_1080p", 1920, 1080),
                ("_720p", 1280, 720),
                ("_480p", 854, 480)
            ]
        );
        let h264 = outputs[1]
            .video_description()
            .unwrap()
            .codec_settings()
            .unwrap()
            .h264_settings()
            .unwrap();
        assert_eq!(h264.max_bitrate(), Some(2_800_000));
        assert_eq!(h264.rate_control_mode(), Some(&H264RateControlMode::Qvbr));
    }

    #[test]
    fn static_key_job_carries_the_key_as_hex_and_the_edge_key_url() {
        let ladder = plan_renditions(&[720], u32::MAX);
        let key = ContentKey::new([0xab; 16]);
        let s = job_settings(&spec(
            &ladder,
            JobEncryption::StaticKey {
                key: &key,
                key_url: "https://edge/keys/f/k".into(),
            },
        ));
        let enc = s.output_groups()[0]
            .output_group_settings()
            .unwrap()
            .hls_group_settings()
            .unwrap()
            .encryption()
            .unwrap();
        assert_eq!(enc.encryption_method(), Some(&HlsEncryptionType::Aes128));
        assert_eq!(enc.r#type(), Some(&HlsKeyProviderType::StaticKey));
        let p = enc.static_key_provider().unwrap();
        assert_eq!(p.static_key_value(), Some("ab".repeat(16).as_str()));
        assert_eq!(p.url(), Some("https://edge/keys/f/k"));
        assert!(enc.speke_key_provider().is_none());
    }

    #[test]
    fn speke_job_names_the_title_and_systems() {
        let ladder = plan_renditions(&[480], u32::MAX);
        let s = job_settings(&spec(
            &ladder,
            JobEncryption::Speke {
                resource_id: "file-1".into(),
                url: "https://cp/speke/v2/copyProtection".into(),
                system_ids: vec!["3ea8778f-7742-4bf9-b18b-e834b2acbd47".into()],
                certificate_arn: None,
            },
        ));
        let enc = s.output_groups()[0]
            .output_group_settings()
            .unwrap()
            .hls_group_settings()
            .unwrap()
            .encryption()
            .unwrap();
        assert_eq!(enc.r#type(), Some(&HlsKeyProviderType::Speke));
        let p = enc.speke_key_provider().unwrap();
        assert_eq!(p.resource_id(), Some("file-1"));
        assert_eq!(p.url(), Some("https://cp/speke/v2/copyProtection"));
        assert_eq!(p.system_ids(), ["3ea8778f-7742-4bf9-b18b-e834b2acbd47"]);
        assert!(enc.static_key_provider().is_none());
    }

    #[test]
    fn retry_classification() {
        assert!(is_retryable(429, Some("TooManyRequestsException")));
        assert!(is_retryable(500, Some("InternalServerErrorException")));
        assert!(is_retryable(503, None));
        for (status, code) in [
            (400, "BadRequestException"),
            (403, "ForbiddenException"),
            (404, "NotFoundException"),
            (409, "ConflictException"),
        ] {
            assert!(!is_retryable(status, Some(code)), "{code}");
        }
    }

    #[test]
    fn static_keys_are_redacted_from_responses() {
        let json = br#"{"job":{"settings":{"a":{"staticKeyValue":"00112233445566778899aabbccddeeff","url":"u"},"b":{"staticKeyValue" : "ffeeddccbbaa99887766554433221100"}}}}"#;
        let out = String::from_utf8(redact_static_keys(json)).unwrap();
        assert_eq!(
            out,
            r#"{"job":{"settings":{"a":{"staticKeyValue":"<redacted>","url":"u"},"b":{"staticKeyValue" : "<redacted>"}}}}"#
        );
        assert_eq!(redact_static_keys(b"{\"x\":1}"), b"{\"x\":1}");
        let cut = String::from_utf8(redact_static_keys(br#"{"staticKeyValue":"0011"#)).unwrap();
        assert_eq!(cut, r#"{"staticKeyValue":"<redacted>""#);
        assert!(!cut.contains("0011"));
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(clean(" a\nb\tc "), "a b c");
        let long = "x".repeat(2000);
        assert_eq!(clean(&long).chars().count(), MAX_REASON_CHARS + 1);
    }

    #[test]
    fn paths_and_urls() {
        let s = MediaConvertSettings {
            config: MediaConvertConfig {
                input_bucket: "in".into(),
                output_bucket: "out".into(),
                ..MediaConvertConfig::default()
            },
            edge_base: "https://edge.example/".into(),
            renditions: vec![720],
            segment_seconds: 4,
        };
        let f = Uuid::nil();
        assert_eq!(s.output_dir(f), format!("s3://out/hls/{f}/"));
        assert_eq!(s.input_key(f, "x.MP4"), format!("uploads/{f}/source.mp4"));
        assert_eq!(s.input_key(f, "noext"), format!("uploads/{f}/source"));
        assert_eq!(
            s.key_url(f, Uuid::nil()),
            format!("https://edge.example/keys/{f}/{}", Uuid::nil())
        );
        assert!(s.discover());
        let explicit = MediaConvertSettings {
            config: MediaConvertConfig {
                endpoint_url: "https://abcd.mediaconvert.us-east-1.amazonaws.com".into(),
                ..s.config.clone()
            },
            ..s.clone()
        };
        assert!(!explicit.discover());
    }
}
