//! License load driver for `bench/licenses/run.sh`: latency and throughput of the edge's license
//! endpoints, measured client-side, against a stack the script started (control plane, Redis,
//! two edges sharing it).
//!
//! ```text
//! license_load --edge-a URL --edge-b URL --jwt-file F --signing-key-file F --titles F
//!              --session ID --user ID [--duration-secs 5] [--warmup-secs 1]
//!              [--concurrency 1,8,32] [--client-threads 1] [--smoke]
//! ```
//!
//! `--titles` lists one title a line, `videoId keyId keyHex` (the key is only compared with what
//! the edge answers). The first title serves the warm scenarios; the others are each asked once,
//! sequentially, for the cold ones:
//!
//! - `cold full miss`: first ClearKey request per title on edge A (L1 and L2 empty: the
//!   entitlement and the wrapped key come from the control plane);
//! - `cold L2 hit`: then the first request per title on edge B (entitlement and wrapped key from
//!   Redis, which A filled). `/metrics` of both edges is read before and after each pass, and the
//!   pass fails unless every request took the path it claims.
//! - `warm clearkey`, `warm aes128`, `warm fairplay`: one request repeated by `concurrency`
//!   keep-alive connections in a closed loop for `--duration-secs` after `--warmup-secs`.
//!   ClearKey posts the same kid, user and `X-Playback-Session-Id`; the AES-128 key is fetched
//!   with a session token minted with the URL-signing key (as the edge mints it after a master
//!   playlist); FairPlay posts one SPC built by the test device: the edge still does the whole
//!   RSA-OAEP unwrap, SPC decryption and CKC build each time. FairPlay runs on both edges, each
//!   configured with other test credentials (RSA-1024/SPC v1 and RSA-2048/SPC v2; the edge's
//!   `/fps/certificate` says which).
//!
//! Every response is checked (status 200, the right key inside: ClearKey JWK set, raw AES key,
//! CKC opened by the test device); latency stops when the body is read, before the check.
//! `--smoke` asks a few requests per scenario instead of running for a duration. The exit status
//! is 1 when any request failed, 2 on bad arguments.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use playback::license::clearkey::{self, KeyId};
use playback::license::fairplay::device::{
    test_credentials, test_credentials_2048, DeviceRequest, TEST_CERTIFICATE_1024_DER,
    TEST_CERTIFICATE_2048_DER,
};
use playback::license::fairplay::spc::SPC_VERSION_2;
use playback::license::fairplay::DevelopmentDerivation;
use playback::token::edgeauth::{EdgeAuth, EdgeAuthConfig};
use playback::token::session::{SessionSigner, SessionSubject};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Client, Method};

/// Requests per connection per scenario in `--smoke` mode.
const SMOKE_REQUESTS: usize = 5;
/// Connections per warm scenario in `--smoke` mode.
const SMOKE_CONCURRENCY: usize = 2;
/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies are quoted up to this many bytes.
const QUOTED_BODY_BYTES: usize = 200;

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("license_load: {problem}\n(see the usage at the top of bench/examples/license_load.rs)");
            std::process::exit(2);
        }
    };
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("license_load: cannot start the client runtime: {e}");
            std::process::exit(2);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(results) => {
            print_table(&args, &results);
            let failed: Vec<&Outcome> = results.iter().filter(|r| r.errors > 0).collect();
            if !failed.is_empty() {
                for outcome in failed {
                    eprintln!(
                        "FAILED {} ({}): {} errors; first: {}",
                        outcome.scenario,
                        outcome.edge,
                        outcome.errors,
                        outcome.first_error.as_deref().unwrap_or("?")
                    );
                }
                std::process::exit(1);
            }
        }
        Err(problem) => {
            eprintln!("license_load: {problem}");
            std::process::exit(1);
        }
    }
}

/// One title: a video, its content key id and the key the edge must answer with.
#[derive(Clone)]
struct Title {
    video_id: String,
    key_id: String,
    key: [u8; 16],
}

struct Args {
    edge_a: String,
    edge_b: String,
    jwt: String,
    signing_key: Vec<u8>,
    titles: Vec<Title>,
    session: String,
    user: String,
    duration: Duration,
    warmup: Duration,
    concurrency: Vec<usize>,
    client_threads: usize,
    smoke: bool,
}

impl Args {
    fn parse(raw: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut flags = BTreeMap::new();
        let mut smoke = false;
        let mut raw = raw.peekable();
        while let Some(flag) = raw.next() {
            if flag == "--smoke" {
                smoke = true;
                continue;
            }
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {flag:?}"))?
                .to_string();
            let value = raw
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            flags.insert(name, value);
        }
        let mut take = |name: &str| {
            flags
                .remove(name)
                .ok_or_else(|| format!("--{name} is required"))
        };
        let edge_a = take("edge-a")?.trim_end_matches('/').to_string();
        let edge_b = take("edge-b")?.trim_end_matches('/').to_string();
        let jwt = read_text(&take("jwt-file")?)?;
        let signing_key_file = PathBuf::from(take("signing-key-file")?);
        let signing_key = std::fs::read(&signing_key_file)
            .map_err(|e| format!("{}: {e}", signing_key_file.display()))?;
        let titles = parse_titles(&read_text(&take("titles")?)?)?;
        let session = take("session")?;
        let user = take("user")?;
        let number = |name: &str, default: u64, flags: &mut BTreeMap<String, String>| {
            flags.remove(name).map_or(Ok(default), |v| {
                v.parse::<u64>()
                    .map_err(|_| format!("--{name} must be a whole number, not {v:?}"))
            })
        };
        let duration = Duration::from_secs(number("duration-secs", 5, &mut flags)?);
        let warmup = Duration::from_secs(number("warmup-secs", 1, &mut flags)?);
        let client_threads = number("client-threads", 1, &mut flags)? as usize;
        let concurrency = flags
            .remove("concurrency")
            .unwrap_or_else(|| "1,8,32".into())
            .split(',')
            .map(|n| match n.trim().parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => Ok(n),
                _ => Err(format!("--concurrency takes numbers 1..=1024, not {n:?}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(unknown) = flags.keys().next() {
            return Err(format!("unknown flag --{unknown}"));
        }
        if duration.is_zero() || duration > Duration::from_secs(10) {
            return Err("--duration-secs must be 1..=10".into());
        }
        if titles.len() < 2 {
            return Err("--titles needs at least two titles (one warm, the rest cold)".into());
        }
        Ok(Args {
            edge_a,
            edge_b,
            jwt,
            signing_key,
            titles,
            session,
            user,
            duration,
            warmup,
            concurrency,
            client_threads,
            smoke,
        })
    }
}

fn read_text(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|e| format!("{path}: {e}"))
}

fn parse_titles(text: &str) -> Result<Vec<Title>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [video_id, key_id, key_hex] = fields.as_slice() else {
                return Err(format!(
                    "titles line {}: expected `videoId keyId keyHex`",
                    n + 1
                ));
            };
            let mut key = [0u8; 16];
            hex::decode_to_slice(key_hex, &mut key)
                .map_err(|_| format!("titles line {}: the key is not 32 hex digits", n + 1))?;
            Ok(Title {
                video_id: video_id.to_string(),
                key_id: key_id.to_string(),
                key,
            })
        })
        .collect()
}

/// Checks a 200 response's body; `Err` says what is wrong.
type Check = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// One request, repeated as is, and how to check its answer.
#[derive(Clone)]
struct Probe {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Option<Bytes>,
    check: Check,
}

impl Probe {
    /// Sends the request; the latency ends once the whole body is read.
    async fn send(&self, client: &Client) -> Result<Duration, String> {
        let started = Instant::now();
        let mut request = client
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone());
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?;
        let latency = started.elapsed();
        if status != 200 {
            let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED_BODY_BYTES)]);
            return Err(format!("HTTP {status}: {quoted}"));
        }
        (self.check)(&body)?;
        Ok(latency)
    }
}

/// Builds the probes of one run.
struct Probes<'a> {
    args: &'a Args,
}

impl Probes<'_> {
    fn viewer_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {}", self.args.jwt)) {
            headers.insert(AUTHORIZATION, bearer);
        }
        if let Ok(session) = HeaderValue::from_str(&self.args.session) {
            headers.insert("x-playback-session-id", session);
        }
        headers
    }

    fn clearkey(&self, edge: &str, title: &Title) -> Result<Probe, String> {
        let kid = KeyId::from_uuid(&title.key_id)
            .ok_or_else(|| format!("key id {} is not a UUID", title.key_id))?;
        let body = serde_json::json!({"kids": [kid.to_base64url()], "type": "temporary"});
        let expected = title.key;
        Ok(Probe {
            method: Method::POST,
            url: format!("{edge}/drm/clearkey/{}", title.video_id),
            headers: self.viewer_headers(),
            body: Some(Bytes::from(body.to_string())),
            check: Arc::new(move |body| {
                let license = clearkey::parse_response(body)
                    .map_err(|e| format!("not a ClearKey license: {e}"))?;
                match license.keys.as_slice() {
                    [only] if only.kid == kid && only.key == expected => Ok(()),
                    _ => Err("the license does not hold exactly the requested key".into()),
                }
            }),
        })
    }

    fn aes128(&self, edge: &str, title: &Title) -> Probe {
        let signer = SessionSigner::new(EdgeAuth::new(EdgeAuthConfig::new(
            self.args.signing_key.clone(),
        )));
        let subject = SessionSubject {
            session_id: Some(self.args.session.clone()),
            user_id: Some(self.args.user.clone()),
            jti: None,
        };
        let token = signer.mint_session(&title.video_id, &subject, unix_now() + 3600, None);
        let expected = title.key;
        Probe {
            method: Method::GET,
            url: format!(
                "{edge}/keys/{}/{}?{}={token}",
                title.video_id,
                title.key_id,
                signer.token_name()
            ),
            headers: HeaderMap::new(),
            body: None,
            check: Arc::new(move |body| {
                if body == expected {
                    Ok(())
                } else {
                    Err(format!(
                        "expected the 16-byte key, got {} other bytes",
                        body.len()
                    ))
                }
            }),
        }
    }

    /// A FairPlay probe for the credentials `certificate` (what the edge's `/fps/certificate`
    /// serves) names; its label says which.
    fn fairplay(
        &self,
        edge: &str,
        title: &Title,
        certificate: &[u8],
    ) -> Result<(Probe, &'static str), String> {
        let (credentials, version, label) = if certificate == TEST_CERTIFICATE_1024_DER {
            (test_credentials(), None, "RSA-1024, SPC v1")
        } else if certificate == TEST_CERTIFICATE_2048_DER {
            (
                test_credentials_2048(),
                Some(SPC_VERSION_2),
                "RSA-2048, SPC v2",
            )
        } else {
            return Err(format!(
                "{edge} serves an FPS certificate that is not a test certificate"
            ));
        };
        let mut device = DeviceRequest::new(title.key_id.as_bytes(), &[7; 32]);
        if let Some(version) = version {
            device.version = version;
        }
        let spc = device.build_spc(&credentials, &DevelopmentDerivation);
        let expected = title.key;
        let probe = Probe {
            method: Method::POST,
            url: format!("{edge}/fps/license?contentId={}", title.video_id),
            headers: self.viewer_headers(),
            body: Some(Bytes::from(spc)),
            check: Arc::new(move |body| {
                let opened = device
                    .open_ckc(body)
                    .map_err(|e| format!("the CKC does not open: {e}"))?;
                if opened.content_key == expected {
                    Ok(())
                } else {
                    Err("the CKC carries another content key".into())
                }
            }),
        };
        Ok((probe, label))
    }
}

/// What one scenario measured.
struct Outcome {
    scenario: String,
    edge: &'static str,
    concurrency: usize,
    /// Successful requests' latencies in nanoseconds, sorted.
    latencies: Vec<u64>,
    elapsed: Duration,
    errors: u64,
    first_error: Option<String>,
}

impl Outcome {
    fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies
            .get(index)
            .map(|ns| Duration::from_nanos(*ns))
    }

    fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Tallies of one connection's requests.
#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn record(&mut self, result: Result<Duration, String>) {
        match result {
            Ok(latency) => self
                .latencies
                .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX)),
            Err(problem) => {
                self.errors += 1;
                self.first_error.get_or_insert(problem);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// When a connection stops asking.
#[derive(Clone, Copy)]
enum Until {
    Deadline(Instant),
    Count(usize),
}

/// `concurrency` connections each sending `probe` back to back until `until`.
async fn closed_loop(
    client: &Client,
    probe: &Probe,
    concurrency: usize,
    until: Until,
) -> (Tally, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = client.clone();
        let probe = probe.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sent = 0usize;
            loop {
                match until {
                    Until::Deadline(deadline) if Instant::now() >= deadline => break,
                    Until::Count(count) if sent >= count => break,
                    _ => {}
                }
                sent += 1;
                tally.record(probe.send(&client).await);
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        match task.await {
            Ok(tally) => total.merge(tally),
            Err(e) => total.record(Err(format!("load task failed: {e}"))),
        }
    }
    (total, started.elapsed())
}

async fn warm(
    args: &Args,
    client: &Client,
    scenario: &str,
    edge: &'static str,
    probe: &Probe,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let levels = if args.smoke {
        vec![SMOKE_CONCURRENCY]
    } else {
        args.concurrency.clone()
    };
    for concurrency in levels {
        let mut tally = Tally::default();
        let elapsed;
        if args.smoke {
            let (run, took) =
                closed_loop(client, probe, concurrency, Until::Count(SMOKE_REQUESTS)).await;
            tally.merge(run);
            elapsed = took;
        } else {
            let (warmup, _) = closed_loop(
                client,
                probe,
                concurrency,
                Until::Deadline(Instant::now() + args.warmup),
            )
            .await;
            // Errors during warm-up count: a scenario that fails at all is not a result.
            tally.errors += warmup.errors;
            tally.first_error = warmup.first_error;
            let (run, took) = closed_loop(
                client,
                probe,
                concurrency,
                Until::Deadline(Instant::now() + args.duration),
            )
            .await;
            tally.merge(run);
            elapsed = took;
        }
        let outcome = finish(scenario, edge, concurrency, tally, elapsed);
        report_progress(&outcome);
        outcomes.push(outcome);
    }
    outcomes
}

fn finish(
    scenario: &str,
    edge: &'static str,
    concurrency: usize,
    mut tally: Tally,
    elapsed: Duration,
) -> Outcome {
    tally.latencies.sort_unstable();
    Outcome {
        scenario: scenario.to_string(),
        edge,
        concurrency,
        latencies: tally.latencies,
        elapsed,
        errors: tally.errors,
        first_error: tally.first_error,
    }
}

fn report_progress(outcome: &Outcome) {
    eprintln!(
        "  {:<34} {:<2} c={:<3} {:>7} ok {:>9.0} req/s  p50 {:>6}  p99 {:>6}  errors {}",
        outcome.scenario,
        outcome.edge,
        outcome.concurrency,
        outcome.latencies.len(),
        outcome.per_sec(),
        micros(outcome.percentile(50.0)),
        micros(outcome.percentile(99.0)),
        outcome.errors
    );
}

/// Reads `edge_cache_total{cache,result}` from an edge's `/metrics`.
async fn cache_counter(
    client: &Client,
    edge: &str,
    cache: &str,
    result: &str,
) -> Result<u64, String> {
    let text = client
        .get(format!("{edge}/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{edge}/metrics: {e}"))?
        .text()
        .await
        .map_err(|e| format!("{edge}/metrics: {e}"))?;
    let series = format!("edge_cache_total{{cache=\"{cache}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("{edge}/metrics has no {series}"))
}

/// The L2 lookups an edge has made: (entitlement, wrapped key) counters for `result`.
async fn l2_counters(client: &Client, edge: &str, result: &str) -> Result<(u64, u64), String> {
    Ok((
        cache_counter(client, edge, "entitlement_l2", result).await?,
        cache_counter(client, edge, "wrapped_key_l2", result).await?,
    ))
}

/// One ClearKey request per title on `edge`, one after the other; then checks through
/// `/metrics` that each request found its entitlement and wrapped key in Redis (`result` =
/// "hit") or did not (`result` = "miss", so the control plane answered).
async fn cold(
    client: &Client,
    probes: &Probes<'_>,
    scenario: &str,
    (label, edge): (&'static str, &str),
    titles: &[Title],
    result: &str,
) -> Result<Outcome, String> {
    let before = l2_counters(client, edge, result).await?;
    let mut tally = Tally::default();
    let started = Instant::now();
    for title in titles {
        let probe = probes.clearkey(edge, title)?;
        tally.record(probe.send(client).await);
    }
    let elapsed = started.elapsed();
    let after = l2_counters(client, edge, result).await?;
    let expected = titles.len() as u64;
    let seen = (
        after.0.saturating_sub(before.0),
        after.1.saturating_sub(before.1),
    );
    if seen != (expected, expected) {
        tally.record(Err(format!(
            "expected {expected} L2 {result}es of entitlements and of wrapped keys, /metrics counted {} and {}: the pass did not take the path it measures",
            seen.0, seen.1
        )));
    }
    let outcome = finish(scenario, label, 1, tally, elapsed);
    report_progress(&outcome);
    Ok(outcome)
}

async fn certificate(client: &Client, edge: &str) -> Result<Bytes, String> {
    client
        .get(format!("{edge}/fps/certificate"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("{edge}/fps/certificate: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("{edge}/fps/certificate: {e}"))
}

async fn run(args: &Args) -> Result<Vec<Outcome>, String> {
    let most = args.concurrency.iter().copied().max().unwrap_or(1);
    let client = Client::builder()
        .pool_max_idle_per_host(most.max(SMOKE_CONCURRENCY))
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let probes = Probes { args };
    let (warm_title, cold_titles) = args.titles.split_first().ok_or("no titles")?;
    let mut outcomes = Vec::new();

    // Open the connections and the viewer's state (JWT verified, stream admitted) on both edges
    // with the warm title, so the cold passes measure only the per-title caches.
    for edge in [&args.edge_a, &args.edge_b] {
        probes
            .clearkey(edge, warm_title)?
            .send(&client)
            .await
            .map_err(|e| format!("first ClearKey request to {edge} failed: {e}"))?;
    }
    eprintln!("cold path, {} titles, one request each:", cold_titles.len());
    outcomes.push(
        cold(
            &client,
            &probes,
            "cold full miss (control plane)",
            ("A", &args.edge_a),
            cold_titles,
            "miss",
        )
        .await?,
    );
    // Redis writes of the last titles are asynchronous; let them land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    outcomes.push(
        cold(
            &client,
            &probes,
            "cold L2 hit (Redis)",
            ("B", &args.edge_b),
            cold_titles,
            "hit",
        )
        .await?,
    );

    eprintln!("warm caches, same request repeated:");
    let clearkey = probes.clearkey(&args.edge_a, warm_title)?;
    outcomes.extend(warm(args, &client, "warm clearkey", "A", &clearkey).await);
    let aes = probes.aes128(&args.edge_a, warm_title);
    outcomes.extend(warm(args, &client, "warm aes128 key", "A", &aes).await);
    for (label, edge) in [("A", &args.edge_a), ("B", &args.edge_b)] {
        let served = certificate(&client, edge).await?;
        let (probe, credentials) = probes.fairplay(edge, warm_title, &served)?;
        let scenario = format!("warm fairplay ({credentials})");
        outcomes.extend(warm(args, &client, &scenario, label, &probe).await);
    }
    Ok(outcomes)
}

fn micros(value: Option<Duration>) -> String {
    match value {
        None => "-".into(),
        Some(d) => format!("{}", d.as_micros()),
    }
}

fn print_table(args: &Args, outcomes: &[Outcome]) {
    let mode = if args.smoke {
        format!(
            "smoke: {SMOKE_CONCURRENCY} connections x {SMOKE_REQUESTS} requests per warm scenario"
        )
    } else {
        format!(
            "warm: {} s measured after {} s warm-up per row, closed loop; client: {} thread(s)",
            args.duration.as_secs(),
            args.warmup.as_secs(),
            args.client_threads.max(1)
        )
    };
    println!(
        "\n{mode}; cold: {} titles, sequential\n",
        args.titles.len() - 1
    );
    println!("| scenario | edge | conns | requests | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for o in outcomes {
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            o.scenario,
            o.edge,
            o.concurrency,
            o.latencies.len(),
            o.per_sec(),
            micros(o.percentile(50.0)),
            micros(o.percentile(90.0)),
            micros(o.percentile(99.0)),
            micros(o.percentile(99.9)),
            micros(o.latencies.last().map(|ns| Duration::from_nanos(*ns))),
            o.errors
        );
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
