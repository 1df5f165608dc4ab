//! proxy-wasm glue: host calls in, `decide` out. No decisions are made here.
//!
//! - Root context: parses the plugin configuration in `on_configure` (an invalid one is logged
//!   naming the bad key and refused; the previous one stays active), keeps it in an `Rc` that
//!   HTTP contexts clone at request start (a reconfiguration swaps the `Rc`, so in-flight
//!   requests finish with the keys they started with), and, with `revocation` configured,
//!   fetches the deny-list on every tick and publishes it in shared data (CAS) for all VMs.
//! - HTTP context: reads the deny-list from shared data (re-parsed only when its CAS changes),
//!   decides, then continues (rewriting `:path` / `Cookie`) or answers the denial.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use log::{debug, error, info, warn};
use playback::token::admission::DenyList;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, Status};

use crate::config::{parse, Config};
use crate::decide::{decide, denial_body, parse_source_address, Request, Verdict};

/// Shared-data key of the deny-list (the edge's JSON, as fetched).
const DENY_LIST_KEY: &str = "streaming_edge.wasm_filter.revocations";
/// Shared-data key of the last fetch start (Unix milliseconds, 8 bytes big-endian): the VM
/// that moves it forward (CAS) fetches; the others skip that period.
const FETCH_CLAIM_KEY: &str = "streaming_edge.wasm_filter.revocations.claimed_at";
/// Largest deny-list body accepted.
const MAX_DENY_LIST_BYTES: usize = 8 << 20;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            config: Rc::new(RefCell::new(None)),
            deny: Rc::new(RefCell::new(DenyCache::default())),
            pending: None,
        })
    });
}}

/// The deny-list as last parsed by this VM, keyed by the shared-data CAS it was read at.
#[derive(Default)]
struct DenyCache {
    cas: Option<u32>,
    list: Option<Rc<DenyList>>,
}

impl DenyCache {
    /// The current deny-list from shared data, re-parsed only when its CAS changed.
    fn current(&mut self) -> Option<Rc<DenyList>> {
        let (bytes, cas) = match proxy_wasm::hostcalls::get_shared_data(DENY_LIST_KEY) {
            Ok(found) => found,
            Err(_) => return self.list.clone(),
        };
        if cas.is_some() && cas == self.cas {
            return self.list.clone();
        }
        if let Some(bytes) = bytes {
            match DenyList::from_json(&bytes) {
                Ok(list) => {
                    self.list = Some(Rc::new(list));
                    self.cas = cas;
                }
                Err(_) => {
                    warn!("wasm-filter: shared deny-list does not parse; keeping the previous one")
                }
            }
        }
        self.list.clone()
    }
}

type SharedConfig = Rc<RefCell<Option<Rc<Config>>>>;

struct Root {
    config: SharedConfig,
    deny: Rc<RefCell<DenyCache>>,
    /// The token of the deny-list fetch in flight.
    pending: Option<u32>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.pending != Some(token_id) {
            return;
        }
        self.pending = None;
        let status = self.get_http_call_response_header(":status");
        if status.as_deref() != Some("200") {
            warn!(
                "wasm-filter: deny-list fetch answered {}; keeping the previous list",
                status.as_deref().unwrap_or("no status")
            );
            return;
        }
        if body_size > MAX_DENY_LIST_BYTES {
            warn!("wasm-filter: deny-list of {body_size} bytes is too large; ignored");
            return;
        }
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        let entries = match DenyList::from_json(&body) {
            Ok(list) => list.len(),
            Err(_) => {
                warn!("wasm-filter: deny-list body does not parse; keeping the previous list");
                return;
            }
        };
        let (_, cas) = self.get_shared_data(DENY_LIST_KEY);
        match self.set_shared_data(DENY_LIST_KEY, Some(&body), cas) {
            Ok(()) => debug!("wasm-filter: deny-list refreshed ({entries} entries)"),
            // Another VM published in between; its copy is as fresh as ours.
            Err(Status::CasMismatch) => {}
            Err(e) => warn!("wasm-filter: storing the deny-list failed: {e:?}"),
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            error!("wasm-filter: invalid plugin configuration: none given");
            return false;
        };
        let config = match parse(&bytes) {
            Ok(config) => config,
            Err(e) => {
                error!("wasm-filter: {e}");
                return false;
            }
        };
        match &config.revocation {
            Some(r) => self.set_tick_period(Duration::from_millis(r.refresh_ms)),
            None => self.set_tick_period(Duration::ZERO),
        }
        info!(
            "wasm-filter: configured ({} rules, cloudfront {}, jwt {}, revocation {})",
            config.rules.len(),
            if config.cloudfront.is_some() {
                "on"
            } else {
                "off"
            },
            if config.jwt.is_some() { "on" } else { "off" },
            if config.revocation.is_some() {
                "on"
            } else {
                "off"
            },
        );
        *self.config.borrow_mut() = Some(Rc::new(config));
        if self.config_revocation_is_set() {
            self.fetch_deny_list();
        }
        true
    }

    fn on_tick(&mut self) {
        self.fetch_deny_list();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            config: self.config.borrow().clone(),
            deny: self.deny.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl Root {
    fn config_revocation_is_set(&self) -> bool {
        self.config
            .borrow()
            .as_ref()
            .is_some_and(|c| c.revocation.is_some())
    }

    fn fetch_deny_list(&mut self) {
        if self.pending.is_some() {
            return;
        }
        let Some(config) = self.config.borrow().clone() else {
            return;
        };
        let Some(r) = &config.revocation else {
            return;
        };
        if !self.claim_fetch(r.refresh_ms) {
            return;
        }
        let bearer = format!("Bearer {}", r.service_token);
        let headers = vec![
            (":method", "GET"),
            (":path", r.path.as_str()),
            (":authority", r.authority.as_str()),
            (":scheme", "http"),
            ("authorization", bearer.as_str()),
        ];
        match self.dispatch_http_call(
            &r.cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(r.timeout_ms),
        ) {
            Ok(token) => self.pending = Some(token),
            Err(e) => warn!(
                "wasm-filter: deny-list fetch from cluster {} failed to start: {e:?}",
                r.cluster
            ),
        }
    }
}

impl Root {
    /// True when this VM should fetch now: no VM started a fetch in the last period, and this
    /// one won the CAS race to record that it does.
    fn claim_fetch(&self, refresh_ms: u64) -> bool {
        let Ok(now) = self.get_current_time().duration_since(UNIX_EPOCH) else {
            return true;
        };
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let (last, cas) = self.get_shared_data(FETCH_CLAIM_KEY);
        let last_ms = last
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        // A little under one period, so tick jitter does not skip a whole period.
        if now_ms.saturating_sub(last_ms) < refresh_ms.saturating_mul(9) / 10 {
            return false;
        }
        self.set_shared_data(FETCH_CLAIM_KEY, Some(&now_ms.to_be_bytes()), cas)
            .is_ok()
    }
}

struct Http {
    /// The configuration this request started with (`None`: never configured).
    config: Option<Rc<Config>>,
    deny: Rc<RefCell<DenyCache>>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            // Internal error with no configuration to say otherwise: fail closed.
            return self.deny(500, "internal");
        };
        let Some(now_unix) = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
        else {
            return self.internal(&config);
        };
        // Every header once: `get_http_request_header` answers only the first of several
        // `Cookie` (or `X-Forwarded-For`) headers.
        let headers = self.get_http_request_headers();
        let values = |name: &str| -> Vec<&str> {
            headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let Some(path) = values(":path").first().copied() else {
            return self.internal(&config);
        };
        let authorization = values("authorization").first().copied();
        let cookies = values("cookie");
        let forwarded = if config.client_address.reads_header() {
            values(config.client_address.header().name())
        } else {
            Vec::new()
        };
        let peer = self
            .get_property(vec!["source", "address"])
            .and_then(|v| parse_source_address(&v));
        let deny = if config.revocation.is_some() {
            self.deny.borrow_mut().current()
        } else {
            None
        };
        let request = Request {
            path,
            authorization,
            cookies: &cookies,
            peer,
            forwarded: &forwarded,
            now_unix,
        };
        match decide(&config, deny.as_deref(), &request) {
            Verdict::Pass => Action::Continue,
            Verdict::Allow { path, cookie } => {
                if let Some(path) = path {
                    self.set_http_request_header(":path", Some(&path));
                }
                if let Some(cookie) = cookie {
                    // Removing first drops every Cookie header (a replace may keep all but
                    // the first, depending on the Envoy version).
                    self.set_http_request_header("cookie", None);
                    if let Some(cookie) = cookie {
                        self.add_http_request_header("cookie", &cookie);
                    }
                }
                Action::Continue
            }
            Verdict::Deny { status, code } => {
                if status == 500 {
                    return self.internal(&config);
                }
                self.deny(status, code)
            }
        }
    }
}

impl Http {
    fn deny(&self, status: u32, code: &str) -> Action {
        let body = denial_body(code);
        self.send_http_response(
            status,
            vec![
                ("x-edge-denial", code),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
        );
        Action::Pause
    }

    fn internal(&self, config: &Config) -> Action {
        if config.fail_open {
            warn!("wasm-filter: internal error; failing open");
            Action::Continue
        } else {
            self.deny(500, "internal")
        }
    }
}
