//! The MediaConvert job settings, pure: the HLS output group (one output per configured
//! rendition, 16:9, H.264 QVBR + AAC in TS segments) written to
//! `s3://{output_bucket}/{output_prefix}{fileId}/` as `master.m3u8` plus
//! `master_{height}p.m3u8`, and for DRM titles HLS AES-128 with either the static key provider
//! (the content key from key custody as `StaticKeyValue`, key URL `{edge}/keys/{fileId}/{keyId}`)
//! or SPEKE (`ResourceId` = the file id, so the key provider knows the title).
//!
//! The settings hold the content key in the clear when it is static: build them right before
//! `CreateJob` and never log them.

use crate::keys::ContentKey;
use crate::transcode::Rendition;
use aws_sdk_mediaconvert::types::{
    AacCodingMode, AacRateControlMode, AacSettings, AudioCodec, AudioCodecSettings,
    AudioDefaultSelection, AudioDescription, AudioSelector, ContainerSettings, ContainerType,
    H264CodecProfile, H264GopSizeUnits, H264QvbrSettings, H264RateControlMode,
    H264SceneChangeDetect, H264Settings, HlsClientCache, HlsCodecSpecification,
    HlsDirectoryStructure, HlsEncryptionSettings, HlsEncryptionType, HlsGroupSettings,
    HlsInitializationVectorInManifest, HlsKeyProviderType, HlsManifestDurationFormat,
    HlsOutputSelection, HlsSegmentControl, HlsStreamInfResolution, Input, InputTimecodeSource,
    JobSettings, Output, OutputGroup, OutputGroupSettings, OutputGroupType, ScalingBehavior,
    SpekeKeyProvider, StaticKeyProvider, VideoCodec, VideoCodecSettings, VideoDescription,
    VideoSelector,
};

/// Base name of the master playlist MediaConvert writes (`master.m3u8`), matching the ffmpeg
/// layout the edge expects at `/hls/{fileId}/master.m3u8`.
pub const MASTER_BASENAME: &str = "master";
/// Name of the single audio selector every output takes its audio from.
const AUDIO_SELECTOR: &str = "Audio Selector 1";

/// Width of a 16:9 rendition of `height`, rounded to even (480 → 854).
pub fn rendition_width(height: u32) -> u32 {
    let w = (u64::from(height) * 16 + 4) / 9;
    u32::try_from((w + 1) & !1).unwrap_or(u32::MAX)
}

/// How a job's segments are encrypted.
pub enum JobEncryption<'a> {
    /// Clear HLS.
    None,
    /// HLS AES-128 with a key from custody; `key_url` goes into `#EXT-X-KEY`.
    StaticKey {
        key: &'a ContentKey,
        key_url: String,
    },
    /// HLS AES-128 with keys from a SPEKE key provider.
    Speke {
        resource_id: String,
        url: String,
        system_ids: Vec<String>,
        certificate_arn: Option<String>,
    },
}

/// Everything [`job_settings`] needs.
pub struct JobSpec<'a> {
    /// `s3://bucket/key` of the uploaded source.
    pub input_url: &'a str,
    /// `s3://bucket/prefix/{fileId}/` the title is written under.
    pub output_dir: &'a str,
    pub renditions: &'a [Rendition],
    pub segment_seconds: u32,
    pub encryption: JobEncryption<'a>,
}

/// The `Settings` of a `CreateJob`: one input, one HLS output group.
pub fn job_settings(spec: &JobSpec<'_>) -> JobSettings {
    let input = Input::builder()
        .file_input(spec.input_url)
        .audio_selectors(
            AUDIO_SELECTOR,
            AudioSelector::builder()
                .default_selection(AudioDefaultSelection::Default)
                .build(),
        )
        .video_selector(VideoSelector::builder().build())
        .timecode_source(InputTimecodeSource::Zerobased)
        .build();

    let mut hls = HlsGroupSettings::builder()
        .destination(format!("{}{MASTER_BASENAME}", spec.output_dir))
        .segment_length(i32::try_from(spec.segment_seconds).unwrap_or(4))
        .min_segment_length(0)
        .segment_control(HlsSegmentControl::SegmentedFiles)
        .directory_structure(HlsDirectoryStructure::SingleDirectory)
        .output_selection(HlsOutputSelection::ManifestsAndSegments)
        .manifest_duration_format(HlsManifestDurationFormat::Integer)
        .codec_specification(HlsCodecSpecification::Rfc4281)
        .stream_inf_resolution(HlsStreamInfResolution::Include)
        .client_cache(HlsClientCache::Enabled);
    match &spec.encryption {
        JobEncryption::None => {}
        JobEncryption::StaticKey { key, key_url } => {
            hls = hls.encryption(
                HlsEncryptionSettings::builder()
                    .encryption_method(HlsEncryptionType::Aes128)
                    .r#type(HlsKeyProviderType::StaticKey)
                    .initialization_vector_in_manifest(HlsInitializationVectorInManifest::Include)
                    .static_key_provider(
                        StaticKeyProvider::builder()
                            .static_key_value(hex::encode(key.bytes()))
                            .url(key_url)
                            .key_format("identity")
                            .key_format_versions("1")
                            .build(),
                    )
                    .build(),
            );
        }
        JobEncryption::Speke {
            resource_id,
            url,
            system_ids,
            certificate_arn,
        } => {
            let mut speke = SpekeKeyProvider::builder()
                .resource_id(resource_id)
                .url(url)
                .set_system_ids(Some(system_ids.clone()));
            if let Some(arn) = certificate_arn {
                speke = speke.certificate_arn(arn);
            }
            hls = hls.encryption(
                HlsEncryptionSettings::builder()
                    .encryption_method(HlsEncryptionType::Aes128)
                    .r#type(HlsKeyProviderType::Speke)
                    .initialization_vector_in_manifest(HlsInitializationVectorInManifest::Include)
                    .speke_key_provider(speke.build())
                    .build(),
            );
        }
    }

    let mut group = OutputGroup::builder().name("HLS").output_group_settings(
        OutputGroupSettings::builder()
            .r#type(OutputGroupType::HlsGroupSettings)
            .hls_group_settings(hls.build())
            .build(),
    );
    for r in spec.renditions {
        group = group.outputs(rendition_output(r, spec.segment_seconds));
    }
    JobSettings::builder()
        .inputs(input)
        .output_groups(group.build())
        .build()
}

fn rendition_output(r: &Rendition, segment_seconds: u32) -> Output {
    let bitrate = i32::try_from(u64::from(r.video_kbps) * 1000).unwrap_or(i32::MAX);
    let h264 = H264Settings::builder()
        .rate_control_mode(H264RateControlMode::Qvbr)
        .max_bitrate(bitrate)
        .qvbr_settings(H264QvbrSettings::builder().qvbr_quality_level(7).build())
        .codec_profile(H264CodecProfile::Main)
        .scene_change_detect(H264SceneChangeDetect::TransitionDetection)
        // One GOP per segment, so every segment starts with a keyframe.
        .gop_size(f64::from(segment_seconds))
        .gop_size_units(H264GopSizeUnits::Seconds)
        .build();
    let aac = AacSettings::builder()
        .bitrate(128_000)
        .coding_mode(AacCodingMode::CodingMode20)
        .sample_rate(48_000)
        .rate_control_mode(AacRateControlMode::Cbr)
        .build();
    Output::builder()
        .name_modifier(format!("_{}", r.name))
        .container_settings(
            ContainerSettings::builder()
                .container(ContainerType::M3U8)
                .build(),
        )
        .video_description(
            VideoDescription::builder()
                .width(i32::try_from(rendition_width(r.height)).unwrap_or(i32::MAX))
                .height(i32::try_from(r.height).unwrap_or(i32::MAX))
                .scaling_behavior(ScalingBehavior::Default)
                .codec_settings(
                    VideoCodecSettings::builder()
                        .codec(VideoCodec::H264)
                        .h264_settings(h264)
                        .build(),
                )
                .build(),
        )
        .audio_descriptions(
            AudioDescription::builder()
                .audio_source_name(AUDIO_SELECTOR)
                .codec_settings(
                    AudioCodecSettings::builder()
                        .codec(AudioCodec::Aac)
                        .aac_settings(aac)
                        .build(),
                )
                .build(),
        )
        .build()
}
