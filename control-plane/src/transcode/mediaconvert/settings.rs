//! The MediaConvert job settings, pure, written to `s3://{output_bucket}/{output_prefix}{fileId}/`:
//!
//! - [`JobOutput::Hls`] (protection `aes-128`, and clear titles of that pipeline): the HLS output
//!   group (one output per configured rendition, 16:9, H.264 QVBR + AAC in TS segments) as
//!   `master.m3u8` plus `master_{height}p.m3u8`, and for DRM titles HLS AES-128 with either the
//!   static key provider (the content key from key custody as `StaticKeyValue`, key URL
//!   `{edge}/keys/{fileId}/{keyId}`) or SPEKE (`ResourceId` = the file id, so the key provider
//!   knows the title).
//! - [`JobOutput::Cmaf`] (protections `cbcs`, `cenc`, `none`): one CMAF output group writing both
//!   an HLS (`master.m3u8`) and a DASH (`master.mpd`, copied to `manifest.mpd` when the job
//!   completes) manifest over one set of fMP4 segments, one video output per rendition and one
//!   audio output; encrypted with SPEKE v2 (`EncryptionContractConfiguration` with the `SHARED`
//!   presets: one key for audio and video, as the local pipeline does), `SAMPLE_AES` (cbcs) or
//!   `AES_CTR` (cenc), DASH signaling Widevine, PlayReady and CommonSystem (ClearKey), HLS
//!   signaling FairPlay for cbcs and Widevine for cenc (MediaConvert signals one system in HLS).
//!
//! The settings hold the content key in the clear when it is static: build them right before
//! `CreateJob` and never log them.

use crate::keys::ContentKey;
use crate::transcode::{Protection, Rendition};
use aws_sdk_mediaconvert::types::{
    AacCodingMode, AacRateControlMode, AacSettings, AudioCodec, AudioCodecSettings,
    AudioDefaultSelection, AudioDescription, AudioSelector, CmafEncryptionSettings,
    CmafEncryptionType, CmafGroupSettings, CmafInitializationVectorInManifest, CmafKeyProviderType,
    CmafManifestDurationFormat, CmafMpdProfile, CmafSegmentControl, CmafStreamInfResolution,
    CmafWriteDashManifest, CmafWriteHlsManifest, CmafWriteSegmentTimelineInRepresentation,
    ContainerSettings, ContainerType, EncryptionContractConfiguration, H264CodecProfile,
    H264GopSizeUnits, H264QvbrSettings, H264RateControlMode, H264SceneChangeDetect, H264Settings,
    HlsClientCache, HlsCodecSpecification, HlsDirectoryStructure, HlsEncryptionSettings,
    HlsEncryptionType, HlsGroupSettings, HlsInitializationVectorInManifest, HlsKeyProviderType,
    HlsManifestDurationFormat, HlsOutputSelection, HlsSegmentControl, HlsStreamInfResolution,
    Input, InputTimecodeSource, JobSettings, Output, OutputGroup, OutputGroupSettings,
    OutputGroupType, PresetSpeke20Audio, PresetSpeke20Video, ScalingBehavior, SpekeKeyProvider,
    SpekeKeyProviderCmaf, StaticKeyProvider, VideoCodec, VideoCodecSettings, VideoDescription,
    VideoSelector,
};

/// Base name of the master playlist MediaConvert writes (`master.m3u8`), matching the ffmpeg
/// layout the edge expects at `/hls/{fileId}/master.m3u8`.
pub const MASTER_BASENAME: &str = "master";
/// The DASH manifest a CMAF job writes (`{MASTER_BASENAME}.mpd`), copied to the title's
/// [`crate::transcode::DASH_MANIFEST`] on completion.
pub const MEDIACONVERT_MPD: &str = "master.mpd";
/// The systems a CMAF title signals in its DASH manifest: Widevine, PlayReady, CommonSystem.
pub const DASH_SYSTEM_IDS: [&str; 3] = [
    playback::speke::WIDEVINE_SYSTEM_ID,
    playback::speke::PLAYREADY_SYSTEM_ID,
    playback::speke::COMMON_SYSTEM_ID,
];
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

/// Common encryption of a CMAF job with keys from a SPEKE v2 key provider.
#[derive(Debug, Clone)]
pub struct CmafSpeke {
    /// `cbcs` or `cenc`.
    pub scheme: Protection,
    /// The title's file id (`CPIX@contentId`).
    pub resource_id: String,
    pub url: String,
    pub certificate_arn: Option<String>,
}

impl CmafSpeke {
    /// The one system MediaConvert signals in a CMAF HLS manifest: FairPlay for cbcs, Widevine
    /// for cenc (FairPlay clients need cbcs).
    pub fn hls_system_id(&self) -> &'static str {
        if self.scheme == Protection::Cbcs {
            playback::speke::FAIRPLAY_SYSTEM_ID
        } else {
            playback::speke::WIDEVINE_SYSTEM_ID
        }
    }
}

/// What a job makes.
pub enum JobOutput<'a> {
    /// HLS with MPEG-TS segments (the `aes-128` pipeline, clear or encrypted).
    Hls(JobEncryption<'a>),
    /// CMAF with HLS and DASH manifests, clear or with SPEKE v2 common encryption.
    Cmaf(Option<CmafSpeke>),
}

/// Everything [`job_settings`] needs.
pub struct JobSpec<'a> {
    /// `s3://bucket/key` of the uploaded source.
    pub input_url: &'a str,
    /// `s3://bucket/prefix/{fileId}/` the title is written under.
    pub output_dir: &'a str,
    pub renditions: &'a [Rendition],
    pub segment_seconds: u32,
    pub output: JobOutput<'a>,
}

/// The `Settings` of a `CreateJob`: one input, one HLS or CMAF output group.
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
    let group = match &spec.output {
        JobOutput::Hls(encryption) => hls_group(spec, encryption),
        JobOutput::Cmaf(encryption) => cmaf_group(spec, encryption.as_ref()),
    };
    JobSettings::builder()
        .inputs(input)
        .output_groups(group)
        .build()
}

/// The HLS (MPEG-TS) output group.
fn hls_group(spec: &JobSpec<'_>, encryption: &JobEncryption<'_>) -> OutputGroup {
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
    match encryption {
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
    group.build()
}

/// The CMAF output group: HLS and DASH manifests over one set of segments.
fn cmaf_group(spec: &JobSpec<'_>, encryption: Option<&CmafSpeke>) -> OutputGroup {
    let seg = i32::try_from(spec.segment_seconds).unwrap_or(4);
    let mut cmaf = CmafGroupSettings::builder()
        .destination(format!("{}{MASTER_BASENAME}", spec.output_dir))
        .segment_length(seg)
        .fragment_length(seg)
        .segment_control(CmafSegmentControl::SegmentedFiles)
        .write_hls_manifest(CmafWriteHlsManifest::Enabled)
        .write_dash_manifest(CmafWriteDashManifest::Enabled)
        .write_segment_timeline_in_representation(CmafWriteSegmentTimelineInRepresentation::Enabled)
        .mpd_profile(CmafMpdProfile::MainProfile)
        .manifest_duration_format(CmafManifestDurationFormat::Integer)
        .stream_inf_resolution(CmafStreamInfResolution::Include);
    if let Some(speke) = encryption {
        let method = if speke.scheme == Protection::Cbcs {
            CmafEncryptionType::SampleAes
        } else {
            CmafEncryptionType::AesCtr
        };
        let mut provider = SpekeKeyProviderCmaf::builder()
            .resource_id(&speke.resource_id)
            .url(&speke.url)
            .set_dash_signaled_system_ids(Some(
                DASH_SYSTEM_IDS.iter().map(|s| s.to_string()).collect(),
            ))
            .hls_signaled_system_ids(speke.hls_system_id())
            .encryption_contract_configuration(
                EncryptionContractConfiguration::builder()
                    .speke_video_preset(PresetSpeke20Video::Shared)
                    .speke_audio_preset(PresetSpeke20Audio::Shared)
                    .build(),
            );
        if let Some(arn) = &speke.certificate_arn {
            provider = provider.certificate_arn(arn);
        }
        cmaf = cmaf.encryption(
            CmafEncryptionSettings::builder()
                .encryption_method(method)
                .r#type(CmafKeyProviderType::Speke)
                .initialization_vector_in_manifest(CmafInitializationVectorInManifest::Exclude)
                .speke_key_provider(provider.build())
                .build(),
        );
    }
    let mut group = OutputGroup::builder().name("CMAF").output_group_settings(
        OutputGroupSettings::builder()
            .r#type(OutputGroupType::CmafGroupSettings)
            .cmaf_group_settings(cmaf.build())
            .build(),
    );
    for r in spec.renditions {
        group = group.outputs(
            Output::builder()
                .name_modifier(format!("_{}", r.name))
                .container_settings(cmfc())
                .video_description(video_description(r, spec.segment_seconds))
                .build(),
        );
    }
    group
        .outputs(
            Output::builder()
                .name_modifier("_audio")
                .container_settings(cmfc())
                .audio_descriptions(aac_description())
                .build(),
        )
        .build()
}

fn cmfc() -> ContainerSettings {
    ContainerSettings::builder()
        .container(ContainerType::Cmfc)
        .build()
}

fn rendition_output(r: &Rendition, segment_seconds: u32) -> Output {
    Output::builder()
        .name_modifier(format!("_{}", r.name))
        .container_settings(
            ContainerSettings::builder()
                .container(ContainerType::M3U8)
                .build(),
        )
        .video_description(video_description(r, segment_seconds))
        .audio_descriptions(aac_description())
        .build()
}

/// H.264 QVBR at the rendition's size, one GOP per segment.
fn video_description(r: &Rendition, segment_seconds: u32) -> VideoDescription {
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
        .build()
}

/// AAC 128 kb/s stereo, 48 kHz, from the one audio selector.
fn aac_description() -> AudioDescription {
    let aac = AacSettings::builder()
        .bitrate(128_000)
        .coding_mode(AacCodingMode::CodingMode20)
        .sample_rate(48_000)
        .rate_control_mode(AacRateControlMode::Cbr)
        .build();
    AudioDescription::builder()
        .audio_source_name(AUDIO_SELECTOR)
        .codec_settings(
            AudioCodecSettings::builder()
                .codec(AudioCodec::Aac)
                .aac_settings(aac)
                .build(),
        )
        .build()
}
