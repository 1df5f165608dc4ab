//! Running one external tool of the local pipeline (ffmpeg, Shaka Packager) as a child that
//! dies with the control plane: stdin closed, stderr's tail kept for the failure reason, and,
//! for ffmpeg, `-progress pipe:1` on stdout turned into percentages.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;

use super::progress::{parse_progress_line, percent, ProgressLine, StderrTail};
use super::transcoder::TranscodeError;

/// Where a child's `-progress` output goes: percentages of `duration_secs`, mapped onto
/// `floor..=ceiling` of the job's 0–99 (so a later stage can take the rest).
pub struct ProgressSink<'a> {
    pub sender: &'a watch::Sender<u8>,
    pub duration_secs: f64,
    pub floor: u8,
    pub ceiling: u8,
}

impl ProgressSink<'_> {
    fn scaled(&self, out_time_us: u64) -> u8 {
        let p = u32::from(percent(out_time_us, self.duration_secs));
        let span = u32::from(self.ceiling.saturating_sub(self.floor));
        self.floor + u8::try_from(p * span / 99).unwrap_or(span as u8)
    }
}

/// Why a child failed.
#[derive(Debug)]
pub enum ToolFailure {
    Spawn(std::io::Error),
    Io(std::io::Error),
    Exit { status: String, stderr_tail: String },
}

impl ToolFailure {
    /// The job's error: `exit` builds the one for a non-zero exit from the status and the
    /// stderr tail.
    pub fn into_transcode_error(
        self,
        program: &Path,
        exit: impl FnOnce(String, String) -> TranscodeError,
    ) -> TranscodeError {
        match self {
            ToolFailure::Spawn(source) => TranscodeError::Spawn {
                program: program.to_path_buf(),
                source,
            },
            ToolFailure::Io(e) => TranscodeError::Io(e),
            ToolFailure::Exit {
                status,
                stderr_tail,
            } => exit(status, stderr_tail),
        }
    }
}

/// `args` joined by spaces, for logs and tests (the pipeline's arguments hold no secret).
pub fn command_line(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `program args` (in `current_dir` when given) to its end; with `progress`, stdout is
/// read as ffmpeg `-progress` output.
pub async fn run_tool(
    program: &Path,
    args: &[OsString],
    current_dir: Option<&Path>,
    progress: Option<ProgressSink<'_>>,
) -> Result<(), ToolFailure> {
    tracing::debug!(program = %program.display(), args = %command_line(args), "running");
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = current_dir {
        command.current_dir(dir);
    }
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(ToolFailure::Spawn)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");

    let progress_reader = async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let (Some(sink), Some(ProgressLine::OutTimeUs(us))) =
                (&progress, parse_progress_line(&line))
            else {
                continue;
            };
            let next = sink.scaled(us);
            sink.sender.send_if_modified(|p| {
                let next = next.max(*p);
                std::mem::replace(p, next) != next
            });
        }
    };
    let stderr_reader = async move {
        let mut tail = StderrTail::new(12);
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tail.push(&line);
        }
        tail
    };
    let (status, (), tail) = tokio::join!(child.wait(), progress_reader, stderr_reader);
    let status = status.map_err(ToolFailure::Io)?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolFailure::Exit {
            status: status.to_string(),
            stderr_tail: tail.summary(),
        })
    }
}

/// Asks the kernel to kill the child if the control plane dies (even by SIGKILL), so a
/// restart never races an orphan writing into the same staging tree.
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only makes one async-signal-safe
    // system call (prctl).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_scaled_into_its_stage() {
        let (sender, _rx) = watch::channel(0u8);
        let sink = ProgressSink {
            sender: &sender,
            duration_secs: 10.0,
            floor: 0,
            ceiling: 90,
        };
        assert_eq!(sink.scaled(0), 0);
        assert_eq!(sink.scaled(5_000_000), 45);
        assert_eq!(sink.scaled(20_000_000), 90);
        let whole = ProgressSink {
            floor: 0,
            ceiling: 99,
            ..sink
        };
        assert_eq!(whole.scaled(5_000_000), 50);
        assert_eq!(whole.scaled(10_000_000), 99);
    }

    #[tokio::test]
    async fn a_failing_child_reports_its_stderr_tail() {
        let args: Vec<OsString> = vec!["-c".into(), "echo first >&2; echo last >&2; exit 3".into()];
        match run_tool(Path::new("/bin/sh"), &args, None, None).await {
            Err(ToolFailure::Exit {
                status,
                stderr_tail,
            }) => {
                assert!(status.contains('3'), "{status}");
                assert_eq!(stderr_tail, "first | last");
            }
            other => panic!("expected an exit failure, got {other:?}"),
        }
        assert!(matches!(
            run_tool(Path::new("/nonexistent/tool"), &[], None, None).await,
            Err(ToolFailure::Spawn(_))
        ));
    }
}
