//! `cpx-agent diagnose`: ordered checks that name the fault and its fix, for the helpdesk. Each check has
//! a verdict and, when it is not fine, a code of the catalogue (the fix comes with it). The first check
//! that is not fine is the fault to act on.

use std::time::Duration;

use cpx_card::{CertCache, Recognition, Validity};
use cpx_pcsc::SlotState as Slot;
use serde::Serialize;

use crate::card_service::CardService;
use crate::config::{Config, PkiPolicy};
use crate::messages::{Code, Lang, Text};
use crate::mtls::Endpoint;
use crate::scan::now_unix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name of the check.
    pub check: String,
    pub verdict: Verdict,
    pub code: Option<Code>,
    /// What was found, for the helpdesk (technical, not translated).
    pub detail: String,
}

impl Check {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { check: check.into(), verdict: Verdict::Ok, code: None, detail: detail.into() }
    }
    fn bad(check: impl Into<String>, verdict: Verdict, code: Code, detail: impl Into<String>) -> Self {
        Self { check: check.into(), verdict, code: Some(code), detail: detail.into() }
    }
}

pub struct Options<'a> {
    pub config: &'a Config,
    /// Where the configuration came from, for the report.
    pub config_source: String,
    pub reader: Option<String>,
    /// Check that this origin is configured.
    pub origin: Option<String>,
    pub timeout: Duration,
    /// The way to the card: the agent's (the tray), or the command's own (`cpx-agent diagnose`).
    pub cards: &'a CardService,
    /// The agent's data folder (its local CA).
    pub data_dir: std::path::PathBuf,
}

/// The titles of the checks, in the user's language.
pub fn title(check: &str) -> Text {
    let kind = check.split(':').next().unwrap_or(check);
    match kind {
        "pcsc_service" => Text { fr: "Service PC/SC", en: "PC/SC service" },
        "readers" => Text { fr: "Lecteurs de carte", en: "Card readers" },
        "card" => Text { fr: "Carte dans le lecteur", en: "Card in the reader" },
        "card_type" => Text { fr: "Type de carte (ATR, émetteur)", en: "Card type (ATR, issuer)" },
        "card_content" => Text {
            fr: "Contenu de la carte (PKCS#15, certificat)",
            en: "Card content (PKCS#15, certificate)",
        },
        "pin" => Text { fr: "Code porteur", en: "Code porteur (PIN)" },
        "certificate" => Text { fr: "Certificat de la carte", en: "Card certificate" },
        "loopback_port" => Text { fr: "Port local de l'agent", en: "Agent's loopback port" },
        "configuration" => Text { fr: "Configuration en vigueur", en: "Configuration in force" },
        "site" => Text { fr: "Site configuré", en: "Site configured" },
        "portal_endpoint" => {
            Text { fr: "Serveur de connexion par carte du site", en: "Site's card login server" }
        }
        "clock" => Text { fr: "Horloge de l'ordinateur", en: "Computer clock" },
        "policy" => Text {
            fr: "Politique gérée : valeurs fixées et leur source",
            en: "Managed policy: values set and their source",
        },
        "policy_problem" => Text { fr: "Clé de configuration invalide", en: "Malformed configuration key" },
        "loopback_trust" => Text {
            fr: "Certificat local approuvé par les navigateurs",
            en: "Local certificate trusted by the browsers",
        },
        _ => Text { fr: "Vérification", en: "Check" },
    }
}

pub fn run(opts: &Options) -> Vec<Check> {
    let mut checks = Vec::new();
    card_checks(opts, &mut checks);
    checks.push(loopback_port(opts.config.port));
    checks.push(loopback_trust(&opts.data_dir));
    checks.push(Check::ok(
        "configuration",
        format!(
            "{} ({} site(s), port {}, IGC-Santé {})",
            opts.config_source,
            opts.config.sites.len(),
            opts.config.port,
            format!("{:?}", opts.config.pki).to_lowercase()
        ),
    ));
    policy_checks(&opts.config.provenance, &mut checks);
    if let Some(origin) = &opts.origin {
        checks.push(match opts.config.site(origin) {
            Some(site) => Check::ok(
                "site",
                format!(
                    "{} → {}",
                    site.origin,
                    site.mtls_endpoint.as_deref().unwrap_or("(no mTLS endpoint)")
                ),
            ),
            None => Check::bad(
                "site",
                Verdict::Fail,
                Code::SiteNotConfigured,
                format!("{origin} is not in the configuration"),
            ),
        });
    }
    for site in opts.config.sites.iter().filter(|s| s.mtls_endpoint.is_some()) {
        let (endpoint, server_date) = portal_endpoint(site, opts.timeout);
        let ok = endpoint.verdict == Verdict::Ok;
        checks.push(endpoint);
        if ok {
            checks.push(clock(&site.origin, server_date, now_unix()));
        }
    }
    checks
}

/// What the managed policy sets and from where (one `key = value  (source)` per setting), then one warning
/// per malformed key (`policy_problem:KEY`) naming its source, the reason and the safe default in force.
fn policy_checks(provenance: &crate::config::Provenance, checks: &mut Vec<Check>) {
    let managed = provenance.managed_lines();
    let mut detail =
        if managed.is_empty() { "no managed policy sets anything".to_owned() } else { managed.join("; ") };
    if let Some(by) = &provenance.user_sites_off_by {
        detail.push_str(&format!("; allow_user_sites = false ({by}): managed sites only, no consent dialog"));
    }
    checks.push(Check::ok("policy", detail));
    for p in &provenance.problems {
        checks.push(Check::bad(
            format!("policy_problem:{}", p.key),
            Verdict::Warn,
            Code::PolicyMalformed,
            format!("{}: {}; instead: {}", p.source, p.reason, p.instead),
        ));
    }
}

fn card_checks(opts: &Options, checks: &mut Vec<Check>) {
    // Through the card service, like every card access: a login in progress is waited for (up to the card
    // timeout).
    if let Err(code) = opts.cards.blocking(|cards| reader_checks(opts, cards, checks)) {
        checks.push(Check::bad("card", Verdict::Fail, code, "the card stayed in use by a login"));
    }
}

fn reader_checks(opts: &Options, cards: &CardService, checks: &mut Vec<Check>) {
    let readers = match cards.readers() {
        Ok(r) => r,
        Err(e) => {
            return checks.push(Check::bad("pcsc_service", Verdict::Fail, Code::from(&e), e.to_string()))
        }
    };
    checks.push(Check::ok("pcsc_service", "running"));
    let readers: Vec<_> =
        readers.into_iter().filter(|r| opts.reader.as_deref().is_none_or(|n| n == r.name)).collect();
    if readers.is_empty() {
        let code = if opts.reader.is_some() { Code::ReaderUnavailable } else { Code::NoReader };
        return checks.push(Check::bad("readers", Verdict::Fail, code, "no reader listed by PC/SC"));
    }
    checks.push(Check::ok("readers", readers.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")));
    if readers.iter().all(|r| r.state == Slot::Empty) {
        return checks.push(Check::bad("card", Verdict::Fail, Code::NoCard, "no card in any reader"));
    }
    for r in readers.iter().filter(|r| r.state != Slot::Empty) {
        one_card(opts, cards, r, checks);
    }
}

fn one_card(opts: &Options, cards: &CardService, r: &cpx_pcsc::ReaderInfo, checks: &mut Vec<Check>) {
    let at = |c: &str| format!("{c}:{}", r.name);
    let atr = hex::encode_upper(&r.atr);
    match r.state {
        Slot::Mute => return checks.push(Check::bad(at("card"), Verdict::Fail, Code::CardMute, "no ATR")),
        Slot::Exclusive => {
            return checks.push(Check::bad(
                at("card"),
                Verdict::Fail,
                Code::CardInUse,
                "held exclusively by another program",
            ))
        }
        Slot::Unavailable => {
            return checks.push(Check::bad(
                at("card"),
                Verdict::Fail,
                Code::ReaderUnavailable,
                "reader unavailable",
            ))
        }
        _ => {}
    }
    // Everything read from the card, never from the cache: the check is about the card's content.
    let mut card = match cards.open_card(&r.name, Some(&r.atr), &CertCache::memory()) {
        Ok(c) => c,
        Err(e) => {
            let parsed = cpx_card::atr::parse(&r.atr);
            let detail = format!(
                "ATR {atr} (protocols T={:?}, historical bytes {}): {e}",
                parsed.protocols, parsed.historical
            );
            // Named by its ATR or EF.SN.ICC, and it answered: the card type is known, its content is at fault.
            if let (Some(generation), false) =
                (e.recognised(), matches!(e.root(), cpx_card::CardError::Pcsc(_)))
            {
                checks.push(Check::ok(at("card"), format!("ATR {atr}")));
                checks.push(Check::ok(
                    at("card_type"),
                    format!(
                        "{} (by {}), issuer ANS",
                        cpx_card::generation_name(generation),
                        if cpx_card::atr::recognise(&r.atr).is_some() { "ATR table" } else { "EF.SN.ICC" }
                    ),
                ));
                return checks.push(Check::bad(at("card_content"), Verdict::Fail, Code::from(&e), detail));
            }
            let code = match Code::from(&e) {
                Code::CardTimeout => Code::CardMute,
                c => c,
            };
            let check = if code == Code::CardNotCpx { "card_type" } else { "card" };
            return checks.push(Check::bad(at(check), Verdict::Fail, code, detail));
        }
    };
    checks.push(Check::ok(at("card"), format!("ATR {atr}")));
    let info = card.info().clone();
    checks.push(match &info.recognition {
        Recognition::AtrTable { label } => {
            Check::ok(at("card_type"), format!("{label}, issuer ANS, card number {}", info.serial))
        }
        Recognition::IssuerOnly => {
            let parsed = cpx_card::atr::parse(&info.atr);
            Check::bad(
                at("card_type"),
                Verdict::Warn,
                Code::CardUnlistedVariant,
                format!(
                    "ATR {atr} in no table (T={:?}, historical bytes {}); issuer ANS; read as {:?}",
                    parsed.protocols, parsed.historical, info.generation
                ),
            )
        }
    });
    if info.interface == cpx_card::Interface::Contactless {
        checks.push(Check::bad(at("pin"), Verdict::Fail, Code::Contactless, "contactless: no code porteur"));
    } else {
        checks.push(match card.pin_status() {
            Ok(Some(p)) if p.blocked() => {
                Check::bad(at("pin"), Verdict::Fail, Code::PinBlocked, "0 tries left")
            }
            Ok(Some(p)) if p.tries_left == 1 => Check::bad(
                at("pin"),
                Verdict::Warn,
                Code::PinLastTry,
                format!("1 of {} tries left", p.max_tries),
            ),
            Ok(Some(p)) => Check::ok(at("pin"), format!("{} of {} tries left", p.tries_left, p.max_tries)),
            Ok(None) => Check::bad(at("pin"), Verdict::Fail, Code::Contactless, "no code porteur"),
            Err(e) => Check::bad(
                at("pin"),
                Verdict::Fail,
                Code::about_card(&e, Some(info.generation)),
                e.to_string(),
            ),
        });
    }
    let id = card.identity().clone();
    let dates = format!(
        "{} → {}, {}",
        cpx_card::identity::date(id.not_before),
        cpx_card::identity::date(id.not_after),
        id.issuer
    );
    checks.push(match (id.validity_at(now_unix()), id.test_pki, opts.config.pki) {
        (Validity::Expired, ..) => {
            Check::bad(at("certificate"), Verdict::Fail, Code::CertificateExpired, dates)
        }
        (Validity::NotYetValid, ..) => {
            Check::bad(at("certificate"), Verdict::Fail, Code::CertificateNotYetValid, dates)
        }
        (_, true, PkiPolicy::Production) => {
            Check::bad(at("certificate"), Verdict::Fail, Code::CardTestOnProduction, dates)
        }
        (_, false, PkiPolicy::Test) => Check::bad(
            at("certificate"),
            Verdict::Fail,
            Code::CardTestOnProduction,
            format!("production card, test-only configuration: {dates}"),
        ),
        _ => Check::ok(at("certificate"), format!("{} ({}), {dates}", id.display_name(), id.national_id)),
    });
}

/// Which loopback identity the agent presents (the machine's, made by the installer, or this user's), and
/// whether the stores the browsers read trust its local CA.
fn loopback_trust(data_dir: &std::path::Path) -> Check {
    let machine = crate::machine_trust::machine_dir();
    match crate::machine_trust::identity(&machine) {
        Some(Ok(identity))
            if crate::localca::due_for_renewal(&identity.cert_pem, time::OffsetDateTime::now_utc()) =>
        {
            let detail = format!("machine identity {}: the loopback certificate ends within {} days; an administrator runs `cpx-agent install-trust` (or reinstalls) to make it anew", machine.display(), crate::localca::RENEW_BEFORE_DAYS);
            return Check::bad("loopback_trust", Verdict::Warn, Code::LoopbackNotTrusted, detail);
        }
        Some(Ok(_)) => return machine_trust_check(&machine),
        Some(Err(e)) => {
            return Check::bad(
                "loopback_trust",
                Verdict::Fail,
                Code::LoopbackNotTrusted,
                format!(
                    "machine identity {}: {e} (the agent falls back to the user's own)",
                    machine.display()
                ),
            );
        }
        None => {}
    }
    let path = data_dir.join(crate::localca::CA_FILE);
    let Ok(pem) = std::fs::read_to_string(&path) else {
        return Check::ok(
            "loopback_trust",
            format!("user identity {}: no local CA yet (made at the agent's first start)", path.display()),
        );
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let stores = crate::browser_trust::check(&pem, &home);
    let said = |t: Option<bool>| match t {
        Some(true) => "trusted",
        Some(false) => "NOT trusted",
        None => "not readable (certutil missing?)",
    };
    let detail = format!(
        "user identity {}: {}",
        path.display(),
        stores.iter().map(|s| format!("{}: {}", s.store, said(s.trusted))).collect::<Vec<_>>().join("; ")
    );
    if stores.is_empty() {
        Check::ok("loopback_trust", format!("{}: no browser store found to check", path.display()))
    } else if stores.iter().any(|s| s.trusted == Some(true)) {
        Check::ok("loopback_trust", detail)
    } else {
        Check::bad("loopback_trust", Verdict::Warn, Code::LoopbackNotTrusted, detail)
    }
}

/// The machine's identity: every machine-wide store the installer wrote must still trust its CA.
fn machine_trust_check(dir: &std::path::Path) -> Check {
    let verdicts = match crate::machine_trust::check(dir) {
        Ok(v) => v,
        Err(e) => {
            return Check::bad(
                "loopback_trust",
                Verdict::Fail,
                Code::LoopbackNotTrusted,
                format!("machine identity {}: {e}", dir.display()),
            )
        }
    };
    let said = |v: &crate::machine_trust::Verdict| {
        format!("{}: {}", v.store, if v.trusted { "trusted" } else { "NOT trusted" })
    };
    let detail = format!(
        "machine identity {}: {}",
        dir.display(),
        verdicts.iter().map(said).collect::<Vec<_>>().join("; ")
    );
    if verdicts.iter().all(|v| v.trusted) {
        Check::ok("loopback_trust", detail)
    } else {
        Check::bad("loopback_trust", Verdict::Warn, Code::LoopbackNotTrusted, detail)
    }
}

/// Is the port free, or held by an Agent CPx (it answers `{"agent": "cpx-agent"}` on /v1/status)?
fn loopback_port(port: u16) -> Check {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return Check::ok("loopback_port", format!("127.0.0.1:{port} free (the agent is not running)"));
    }
    match probe_agent(port) {
        true => Check::ok("loopback_port", format!("127.0.0.1:{port}: Agent CPx answers")),
        false => Check::bad(
            "loopback_port",
            Verdict::Fail,
            Code::AgentPortTaken,
            format!("127.0.0.1:{port} is taken and does not answer as Agent CPx"),
        ),
    }
}

/// A TLS connection to the loopback port (any certificate: this only asks who is there) and a status GET.
fn probe_agent(port: u16) -> bool {
    use std::io::{Read, Write};
    #[derive(Debug)]
    struct AnyCert;
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer,
            _: &[rustls::pki_types::CertificateDer],
            _: &rustls::pki_types::ServerName,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let Ok(builder) =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
    else {
        return false;
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCert))
        .with_no_client_auth();
    let Ok(name) = rustls::pki_types::ServerName::try_from("localhost") else { return false };
    let Ok(conn) = rustls::ClientConnection::new(std::sync::Arc::new(config), name) else { return false };
    let Ok(tcp) =
        std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
    else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(3)));
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    if write!(tls, "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").is_err()
    {
        return false;
    }
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).contains("\"agent\":\"cpx-agent\"")
}

/// A TLS handshake with the portal's mTLS endpoint, without the card (the server may ask for a client
/// certificate; reaching that point proves the endpoint is there and its certificate is trusted).
/// The site's mTLS endpoint: reachable, TLS with a certificate from the configured roots (handshake
/// without the card). When it also answers HTTP without the card, its `Date` (Unix time) for the clock check.
fn portal_endpoint(site: &crate::config::Site, timeout: Duration) -> (Check, Option<i64>) {
    let check = format!("portal_endpoint:{}", site.origin);
    let fail = |code: Code, detail: String| (Check::bad(check.clone(), Verdict::Fail, code, detail), None);
    let url = site.mtls_endpoint.as_deref().unwrap_or_default();
    let Some(ep) = Endpoint::parse(url) else {
        return fail(Code::SiteNotConfigured, format!("{url} is not https://host[:port]/path"));
    };
    // The same roots the login uses.
    let store = match crate::login::load_roots(site) {
        Ok(s) => s,
        Err(e) => return fail(e.code, e.detail.unwrap_or_default()),
    };
    let addr = match std::net::ToSocketAddrs::to_socket_addrs(&(ep.host.as_str(), ep.port))
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => return fail(Code::PortalUnreachable, format!("{}: name does not resolve", ep.host)),
    };
    let mut tcp = match std::net::TcpStream::connect_timeout(&addr, timeout) {
        Ok(t) => t,
        Err(e) => return fail(Code::PortalUnreachable, format!("{}:{}: {e}", ep.host, ep.port)),
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config =
        match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => b.with_root_certificates(store).with_no_client_auth(),
            Err(e) => return fail(Code::AgentError, e.to_string()),
        };
    let Ok(name) = rustls::pki_types::ServerName::try_from(ep.host.clone()) else {
        return fail(Code::SiteNotConfigured, "bad host name".into());
    };
    let Ok(mut conn) = rustls::ClientConnection::new(std::sync::Arc::new(config), name) else {
        return fail(Code::AgentError, "TLS setup".into());
    };
    let _ = tcp.set_read_timeout(Some(timeout));
    let mut refused_without_card = false;
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok(_) => {}
            // A server that requires a client certificate may end the handshake here: the server's
            // certificate was verified before that, which is what this check is about.
            Err(e)
                if e.to_string().contains("CertificateRequired")
                    || e.to_string().contains("HandshakeFailure") =>
            {
                refused_without_card = true;
                break;
            }
            Err(e) => return fail(Code::PortalTls, format!("{}:{}: {e}", ep.host, ep.port)),
        }
    }
    let date = if refused_without_card { None } else { http_date(&mut conn, &mut tcp, &ep) };
    (Check::ok(check, format!("{}:{} answers TLS with a trusted certificate", ep.host, ep.port)), date)
}

/// `HEAD path` on the open TLS connection; the answer's `Date` as Unix time. `None` when the server
/// answers nothing without the card (TLS 1.3 servers refuse only after the handshake) or sends no date.
fn http_date(
    conn: &mut rustls::ClientConnection,
    tcp: &mut std::net::TcpStream,
    ep: &Endpoint,
) -> Option<i64> {
    use std::io::{Read, Write};
    let mut tls = rustls::Stream::new(conn, tcp);
    write!(tls, "HEAD {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", ep.path, ep.host).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("date"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .and_then(|d| parse_http_date(&d))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate) as Unix time.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, hms, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = time::Month::try_from(MONTHS.iter().position(|m| m == month)? as u8 + 1).ok()?;
    let mut t = hms.split(':').map(|v| v.parse::<u8>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    Some(date.with_hms(h, m, sec).ok()?.assume_utc().unix_timestamp())
}

/// The computer's clock against the server's `Date`: a few minutes off make TLS and login challenges fail.
fn clock(origin: &str, server: Option<i64>, now: i64) -> Check {
    let check = format!("clock:{origin}");
    let Some(server) = server else {
        return Check::ok(check, "not measured: the endpoint answers HTTP only with the card");
    };
    let skew = now - server;
    let detail = format!("{skew:+} s against the endpoint's Date");
    match skew.abs() {
        0..=60 => Check::ok(check, detail),
        61..=300 => Check::bad(check, Verdict::Warn, Code::ClockSkew, detail),
        _ => Check::bad(check, Verdict::Fail, Code::ClockSkew, detail),
    }
}

/// Exit status of `diagnose`: 0 all fine, 8 warnings only, 9 a check failed.
pub fn exit_status(checks: &[Check]) -> u8 {
    if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        9
    } else if checks.iter().any(|c| c.verdict == Verdict::Warn) {
        8
    } else {
        0
    }
}

/// The first check that is not fine: the fault to act on.
pub fn first_fault(checks: &[Check]) -> Option<&Check> {
    checks.iter().find(|c| c.verdict != Verdict::Ok)
}

pub fn lang_title(check: &str, lang: Lang) -> &'static str {
    title(check).get(lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_from_the_http_date() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(clock("o", Some(1000), 1030).verdict, Verdict::Ok);
        assert_eq!(clock("o", Some(1000), 1200).code, Some(Code::ClockSkew));
        assert_eq!(clock("o", Some(1000), 1200).verdict, Verdict::Warn);
        assert_eq!(clock("o", Some(100_000), 1000).verdict, Verdict::Fail);
        assert_eq!(clock("o", None, 1000).verdict, Verdict::Ok);
    }

    #[test]
    fn policy_checks_name_each_managed_value_and_each_malformed_key() {
        let dir = std::env::temp_dir().join(format!("cpx-diag-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let policy = dir.join("policy.toml");
        std::fs::write(&policy, "pki = \"production\"\nallow_user_sites = \"non\"\n[[site]]\norigin = \"https://portail.example.fr\"\n").unwrap();
        let (config, _) = Config::load_layered(None, Some(&policy)).unwrap();
        let mut checks = Vec::new();
        policy_checks(&config.provenance, &mut checks);
        let at = policy.display().to_string();
        assert!(
            checks[0].detail.contains(&format!("pki = \"production\"  ({at})"))
                && checks[0].detail.contains(&format!("site https://portail.example.fr  ({at})")),
            "{}",
            checks[0].detail
        );
        assert!(checks[0].detail.contains("allow_user_sites = false"), "{}", checks[0].detail);
        let problem = &checks[1];
        assert_eq!(
            (problem.check.as_str(), problem.verdict, problem.code),
            ("policy_problem:allow_user_sites", Verdict::Warn, Some(Code::PolicyMalformed))
        );
        assert!(
            problem.detail.starts_with(&at) && problem.detail.contains("allow_user_sites = false"),
            "{}",
            problem.detail
        );
        assert_eq!(title("policy_problem:allow_user_sites").fr, "Clé de configuration invalide");
    }
}
