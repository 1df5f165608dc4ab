//! The HTTPS listener against independent clients (curl and `openssl s_client`, both on
//! OpenSSL), with certificates made here by Debian's `openssl`: HTTP/2 by ALPN, SNI choosing the
//! certificate, TLS 1.0/1.1 refused, HSTS, mutual TLS per route group (none, good, expired, from
//! another CA, a CN not allowed), address allow/deny lists on IPv4 and IPv6 loopback, the
//! pre-handshake connection filter, and certificate reloads (a bad file keeps the old ones).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `openssl` with `args` in `dir`, panicking with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and the certificates the tests need, in `dir`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn create(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        for ca in ["ca", "other-ca"] {
            openssl(
                dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-days",
                    "30",
                    "-subj",
                    &format!("/CN=test {ca}"),
                ],
            );
        }
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.server("a.test", "a", 30);
        pki.server("b.test", "b", 30);
        pki.client("ca", "license-gw", "good", false);
        pki.client("ca", "someone-else", "stranger", false);
        pki.client("other-ca", "license-gw", "foreign", false);
        pki.client("ca", "license-gw", "expired", true);
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `name.crt` / `name.key` for DNS name `dns`, signed by the CA.
    fn server(&self, dns: &str, name: &str, days: u32) {
        let ext = format!("subjectAltName=DNS:{dns}\nextendedKeyUsage=serverAuth\n");
        std::fs::write(self.dir.join(format!("{name}.ext")), ext).unwrap();
        self.request(dns, name);
        self.run(&format!(
            "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out {name}.crt \
             -days {days} -extfile {name}.ext"
        ));
    }

    /// A client certificate with CN `cn` from `ca`; `expired` makes one that ended in 2021.
    fn client(&self, ca: &str, cn: &str, name: &str, expired: bool) {
        std::fs::write(
            self.dir.join(format!("{name}.ext")),
            "extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        self.request(cn, name);
        if !expired {
            self.run(&format!(
                "x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial \
                 -out {name}.crt -days 30 -extfile {name}.ext"
            ));
            return;
        }
        // `openssl x509` in 3.0 cannot back-date; `openssl ca` can.
        std::fs::write(self.dir.join("index.txt"), "").unwrap();
        std::fs::write(self.dir.join("serial"), "1000\n").unwrap();
        std::fs::write(
            self.dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
             default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
        )
        .unwrap();
        self.run(&format!(
            "ca -batch -config ca.cnf -cert {ca}.crt -keyfile {ca}.key -startdate 20200101000000Z \
             -enddate 20210101000000Z -in {name}.csr -out {name}.crt -extfile {name}.ext -notext"
        ));
    }

    /// A P-256 key `name.key` and a request `name.csr` for CN `cn` (no spaces).
    fn request(&self, cn: &str, name: &str) {
        self.run(&format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {name}.key \
             -out {name}.csr -subj /CN={cn}"
        ));
    }

    /// `openssl` with whitespace-separated `args`, in the PKI directory.
    fn run(&self, args: &str) {
        let args: Vec<&str> = args.split_whitespace().collect();
        openssl(&self.dir, &args);
    }
}

/// An edge with TLS on `tls_port` (plain HTTP stays on its own port) and `route_groups`.
fn start(pki: &Pki, tls_listen: &str, route_groups: &str) -> (Edge, SocketAddr) {
    // The origin sits inside the PKI's temporary directory (Media writes beside its root).
    let media = Media::create(&pki.dir.join("origin"));
    let tls_addr: SocketAddr = tls_listen.parse().unwrap();
    let extra = format!(
        "[tls]\nlisten = {tls_listen:?}\nclient_ca_file = {:?}\nhsts_max_age_secs = 600\n\
         reload_check_secs = 1\n\
         certificates = [ {{ cert_file = {:?}, key_file = {:?} }}, {{ cert_file = {:?}, key_file = {:?} }} ]\n\n\
         {route_groups}\n",
        pki.path("ca.crt"),
        pki.path("a.crt"),
        pki.path("a.key"),
        pki.path("b.crt"),
        pki.path("b.key"),
    );
    let options = EdgeOptions {
        extra,
        ..EdgeOptions::default()
    };
    let edge = Edge::start_opts(
        OriginSetup::Directory(&media.root),
        &format!("http://127.0.0.1:{}", free_port()),
        &options,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(tls_addr).is_err() {
        assert!(Instant::now() < deadline, "the TLS listener did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    (edge, tls_addr)
}

/// curl against `https://{name}:{port}{path}` resolved to `addr`, with `extra` arguments;
/// returns (HTTP version, status, headers and body) or curl's exit code.
fn curl(pki: &Pki, name: &str, addr: SocketAddr, path: &str, extra: &[&str]) -> Output {
    let host = match addr {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-i",
            "--cacert",
            &pki.path("ca.crt"),
        ])
        .args(["--resolve", &format!("{name}:{}:{host}", addr.port())])
        .args(["-w", "\n%{http_version}"])
        .args(extra)
        .arg(format!("https://{name}:{}{path}", addr.port()))
        .stdin(Stdio::null())
        .output()
        .expect("curl runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `error` code of a curl response's JSON body, if it has one.
fn error_code(out: &Output) -> Option<String> {
    let body = text(out);
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    let json: serde_json::Value = serde_json::from_str(&body[start..=end]).ok()?;
    json["error"].as_str().map(str::to_string)
}

fn status(out: &Output) -> u16 {
    let body = text(out);
    let line = body.lines().next().unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The subject CN of the certificate the server sends for `servername` (none: no SNI).
fn served_subject(addr: SocketAddr, servername: Option<&str>, extra: &[&str]) -> Output {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &addr.to_string()])
        .args(extra);
    match servername {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    command
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs")
}

fn metrics_text(edge: &Edge) -> String {
    String::from_utf8_lossy(&edge.raw_get("/metrics").body).into_owned()
}

fn client_cert(pki: &Pki, name: &str) -> [String; 4] {
    [
        "--cert".into(),
        pki.path(&format!("{name}.crt")),
        "--key".into(),
        pki.path(&format!("{name}.key")),
    ]
}

#[test]
fn https_with_h2_sni_and_hsts_and_no_old_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let (edge, tls) = start(&pki, &format!("127.0.0.1:{}", free_port()), "");

    let out = curl(&pki, "a.test", tls, "/health", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = text(&out);
    assert!(body.ends_with("\n2"), "ALPN negotiates h2: {body}");
    assert_eq!(status(&out), 200, "{body}");
    assert!(
        body.contains("strict-transport-security: max-age=600"),
        "{body}"
    );
    let http1 = curl(&pki, "b.test", tls, "/health", &["--http1.1"]);
    assert!(text(&http1).ends_with("\n1.1"), "{}", text(&http1));
    // Plain HTTP stays open and sends no HSTS.
    let plain = edge.raw_get("/health");
    assert_eq!(plain.status, 200);
    assert!(plain.headers("strict-transport-security").is_empty());

    for (sni, subject) in [
        (Some("a.test"), "CN = a.test"),
        (Some("b.test"), "CN = b.test"),
        (Some("unknown.test"), "CN = a.test"),
        (None, "CN = a.test"),
    ] {
        let out = served_subject(tls, sni, &[]);
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(
            printed.contains(&format!("subject={subject}"))
                || printed.contains(&format!("s:{subject}")),
            "{sni:?} should get {subject}: {printed}"
        );
    }
    for old in ["-tls1", "-tls1_1"] {
        let out = served_subject(tls, Some("a.test"), &[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
        let printed = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(
            !printed.contains("BEGIN CERTIFICATE") && (errors.contains("alert protocol version") || errors.contains("alert handshake failure")),
            "{old} must be refused with a TLS alert from the server (rustls: protocol_version for 1.1, handshake_failure for 1.0): {printed} {errors}"
        );
    }
    for modern in ["-tls1_2", "-tls1_3"] {
        let out = served_subject(tls, Some("a.test"), &[modern]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("BEGIN CERTIFICATE"),
            "{modern} is accepted"
        );
    }
    // Garbage instead of a client hello ends that connection only.
    let mut raw = std::net::TcpStream::connect(tls).unwrap();
    std::io::Write::write_all(&mut raw, &[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4]).unwrap();
    std::io::Write::write_all(&mut raw, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = std::io::Read::read_to_end(&mut raw, &mut sink);
    assert_eq!(status(&curl(&pki, "a.test", tls, "/health", &[])), 200);
}

#[test]
fn client_certificates_are_required_per_route_group() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let groups = "[route_groups.internal]\nallowed_identities = [\"cn:license-gw\"]\n\n\
                  [route_groups.license]\nclient_certificate = \"required\"\n";
    let (edge, tls) = start(&pki, &format!("127.0.0.1:{}", free_port()), groups);
    let service = format!("authorization: Bearer {}", service_token());
    let revocations = "/internal/v1/revocations";

    let with = |name: &str| {
        let cert = client_cert(&pki, name);
        let mut args: Vec<&str> = cert.iter().map(String::as_str).collect();
        args.extend(["-H", service.as_str()]);
        curl(&pki, "a.test", tls, revocations, &args)
    };
    let good = with("good");
    assert_eq!(status(&good), 200, "{}", text(&good));

    let none = curl(&pki, "a.test", tls, revocations, &["-H", &service]);
    assert_eq!(status(&none), 403, "{}", text(&none));
    assert_eq!(
        error_code(&none).as_deref(),
        Some("client_certificate_required")
    );
    for rejected in ["stranger", "foreign", "expired"] {
        let out = with(rejected);
        assert_eq!(status(&out), 403, "{rejected}: {}", text(&out));
        assert_eq!(
            error_code(&out).as_deref(),
            Some("client_certificate_rejected"),
            "{rejected}"
        );
    }
    // Over plain HTTP there is no certificate at all.
    let plain = edge.raw_get_with(revocations, &format!("{service}\r\n"));
    assert_eq!(plain.status, 403);
    assert_eq!(
        plain.error_code().as_deref(),
        Some("client_certificate_required")
    );

    // The license group wants any certificate of the CA; the playback group wants none.
    let license = curl(&pki, "a.test", tls, "/fps/certificate", &[]);
    assert_eq!(
        error_code(&license).as_deref(),
        Some("client_certificate_required")
    );
    let cert = client_cert(&pki, "stranger");
    let args: Vec<&str> = cert.iter().map(String::as_str).collect();
    let license = curl(&pki, "a.test", tls, "/fps/certificate", &args);
    assert_ne!(
        error_code(&license).as_deref(),
        Some("client_certificate_required"),
        "{}",
        text(&license)
    );
    assert_ne!(
        error_code(&license).as_deref(),
        Some("client_certificate_rejected")
    );
    let playback = curl(
        &pki,
        "a.test",
        tls,
        &format!("/hls/{VIDEO}/master.m3u8"),
        &[],
    );
    assert_eq!(error_code(&playback).as_deref(), Some("missing_token"));

    // The verified identity is in the access log; refusals are counted by reason.
    std::thread::sleep(Duration::from_millis(200));
    let logs = edge.all_logs();
    assert!(
        logs.contains("\"clientCert\":\"cn=license-gw;sha256="),
        "{logs}"
    );
    assert!(logs.contains(";verified\""), "{logs}");
    assert!(logs.contains(";expired\""), "{logs}");
    assert!(logs.contains(";unknown issuer\""), "{logs}");
    let metrics = metrics_text(&edge);
    assert!(
        metrics.contains("edge_denials_total{reason=\"client_certificate_rejected\"} 3"),
        "{metrics}"
    );
}

#[test]
fn address_lists_refuse_per_group_and_drop_everywhere_refused_peers_before_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    // The TLS listener on IPv6 loopback; the plain one on 127.0.0.1. Every group refuses
    // 127.0.0.3; the admin group allows only 10/8; the playback group also refuses ::1.
    let mut groups = String::new();
    for (group, extra) in [
        ("admin", "ip_allow = [\"10.0.0.0/8\"]\n"),
        ("playback", ""),
        ("license", ""),
        ("internal", ""),
        ("cdn", ""),
        ("ops", ""),
    ] {
        let deny = match group {
            "playback" => "[\"::1\", \"127.0.0.3\"]",
            _ => "[\"127.0.0.3\"]",
        };
        groups.push_str(&format!(
            "[route_groups.{group}]\n{extra}ip_deny = {deny}\n\n"
        ));
    }
    let (edge, tls) = start(&pki, &format!("[::1]:{}", free_port()), &groups);
    let plain_port = edge.addr.port();

    // IPv6: the playback group refuses ::1, the ops group does not.
    let denied = curl(
        &pki,
        "a.test",
        tls,
        &format!("/hls/{VIDEO}/master.m3u8"),
        &[],
    );
    assert_eq!(status(&denied), 403, "{}", text(&denied));
    assert_eq!(error_code(&denied).as_deref(), Some("ip_not_allowed"));
    assert_eq!(status(&curl(&pki, "a.test", tls, "/health", &[])), 200);

    // IPv4: 127.0.0.1 is outside the admin allow-list.
    let admin = raw_request(
        edge.addr,
        "POST",
        "/admin/revocations",
        "content-length: 0\r\n",
    );
    assert_eq!(admin.status, 403);
    assert_eq!(admin.error_code().as_deref(), Some("ip_not_allowed"));

    // 127.0.0.3 is refused by every group: its connection closes before any HTTP.
    let from_refused = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--interface", "127.0.0.3"])
        .arg(format!("http://127.0.0.1:{plain_port}/health"))
        .output()
        .unwrap();
    assert!(
        !from_refused.status.success(),
        "a refused peer gets no answer: {}",
        text(&from_refused)
    );
    let from_other = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "--interface",
            "127.0.0.2",
            "-o",
            "/dev/null",
        ])
        .args(["-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{plain_port}/health"))
        .output()
        .unwrap();
    assert_eq!(text(&from_other), "200");
    let metrics = metrics_text(&edge);
    assert!(
        metrics.contains("edge_connections_refused_total{reason=\"ip_not_allowed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("edge_denials_total{reason=\"ip_not_allowed\"} 2"),
        "{metrics}"
    );
}

#[test]
fn certificates_reload_from_disk_and_a_bad_file_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let (edge, tls) = start(&pki, &format!("127.0.0.1:{}", free_port()), "");
    let fingerprint = || {
        let out = served_subject(tls, Some("a.test"), &[]);
        let pem = String::from_utf8_lossy(&out.stdout).into_owned();
        let start = pem
            .find("-----BEGIN CERTIFICATE-----")
            .expect("a certificate");
        let end = pem.find("-----END CERTIFICATE-----").unwrap();
        pem[start..end].to_string()
    };
    let before = fingerprint();

    // A new certificate for a.test, written over the old files.
    pki.server("a.test", "a", 60);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fingerprint() == before {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let renewed = fingerprint();
    assert_eq!(status(&curl(&pki, "a.test", tls, "/health", &[])), 200);

    // A broken key file: logged, counted, and the renewed certificate keeps serving.
    std::fs::write(
        pki.dir.join("a.key"),
        "-----BEGIN PRIVATE KEY-----\nbroken\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !edge.all_logs().contains("tls certificates not reloaded") {
        assert!(Instant::now() < deadline, "the bad file was not noticed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fingerprint(), renewed);
    assert_eq!(status(&curl(&pki, "a.test", tls, "/health", &[])), 200);
    let metrics = metrics_text(&edge);
    assert!(
        metrics.contains("edge_tls_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("edge_tls_reloads_total{result=\"failed\"} 0"),
        "{metrics}"
    );
}
