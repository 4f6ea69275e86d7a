//! `cpx-agent diagnose`: ordered checks that name the fault and its fix, for the helpdesk. Each check has
//! a verdict and, when it is not fine, a code of the catalogue (the fix comes with it). The first check
//! that is not fine is the fault to act on.

use std::time::Duration;

use cpx_card::{CertCache, Recognition, Validity};
use cpx_pcsc::SlotState as Slot;
use serde::Serialize;

use crate::card::card_service::CardService;
use crate::card::rules::now_unix;
use crate::messages::{detail, Code, Lang, Text};
use crate::platform::config::{Config, PkiPolicy};
use crate::platform::endpoint::Endpoint;
use crate::said::Said;

/// A check's outcome, from the best to the worst (`max` is the worst of several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Works, but something needs attention.
    Warn,
    /// The fault to fix.
    Fail,
}

/// What a check is about. Its name (`card`, `loopback_port`…) is stable: the JSON and the report carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    PcscService,
    Readers,
    Card,
    CardType,
    CardContent,
    Pin,
    Certificate,
    LoopbackPort,
    LoopbackTrust,
    Configuration,
    Policy,
    PolicyProblem,
    Site,
    PortalWay,
    PortalEndpoint,
    Clock,
    KeyStore,
    PinPad,
}

impl CheckKind {
    pub const ALL: [CheckKind; 18] = [
        Self::PcscService,
        Self::Readers,
        Self::Card,
        Self::CardType,
        Self::CardContent,
        Self::Pin,
        Self::Certificate,
        Self::LoopbackPort,
        Self::LoopbackTrust,
        Self::Configuration,
        Self::Policy,
        Self::PolicyProblem,
        Self::Site,
        Self::PortalWay,
        Self::PortalEndpoint,
        Self::Clock,
        Self::KeyStore,
        Self::PinPad,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::PcscService => "pcsc_service",
            Self::Readers => "readers",
            Self::Card => "card",
            Self::CardType => "card_type",
            Self::CardContent => "card_content",
            Self::Pin => "pin",
            Self::Certificate => "certificate",
            Self::LoopbackPort => "loopback_port",
            Self::LoopbackTrust => "loopback_trust",
            Self::Configuration => "configuration",
            Self::Policy => "policy",
            Self::PolicyProblem => "policy_problem",
            Self::Site => "site",
            Self::PortalWay => "portal_way",
            Self::PortalEndpoint => "portal_endpoint",
            Self::Clock => "clock",
            Self::KeyStore => "key_store",
            Self::PinPad => "pinpad",
        }
    }

    /// The title, from the catalogue.
    pub fn title(self) -> Text {
        use crate::messages::check_title as t;
        match self {
            Self::PcscService => t::PCSC_SERVICE,
            Self::Readers => t::READERS,
            Self::Card => t::CARD,
            Self::CardType => t::CARD_TYPE,
            Self::CardContent => t::CARD_CONTENT,
            Self::Pin => t::PIN,
            Self::Certificate => t::CERTIFICATE,
            Self::LoopbackPort => t::LOOPBACK_PORT,
            Self::LoopbackTrust => t::LOOPBACK_TRUST,
            Self::Configuration => t::CONFIGURATION,
            Self::Policy => t::POLICY,
            Self::PolicyProblem => t::POLICY_PROBLEM,
            Self::Site => t::SITE,
            Self::PortalWay => t::PORTAL_WAY,
            Self::PortalEndpoint => t::PORTAL_ENDPOINT,
            Self::Clock => t::CLOCK,
            Self::KeyStore => t::KEY_STORE,
            Self::PinPad => t::PINPAD,
        }
    }

    /// This check about one reader, site or key.
    pub fn at(self, about: impl Into<String>) -> CheckId {
        CheckId { kind: self, about: Some(about.into()) }
    }
}

/// One check: its kind and, for some, the reader, site (origin) or configuration key it is about. It
/// serialises as `kind` or `kind:about` (`card:Lecteur 0`, `clock:https://portail.example.fr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckId {
    pub kind: CheckKind,
    pub about: Option<String>,
}

impl From<CheckKind> for CheckId {
    fn from(kind: CheckKind) -> Self {
        Self { kind, about: None }
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.about {
            Some(about) => write!(f, "{}:{about}", self.kind.name()),
            None => f.write_str(self.kind.name()),
        }
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub id: CheckId,
    pub verdict: Verdict,
    pub code: Option<Code>,
    /// What was found, from the catalogue, in either language.
    pub detail: Said,
}

/// The stable form (the helpdesk report): the detail in English.
impl Serialize for Check {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Check", 4)?;
        st.serialize_field("check", &self.id)?;
        st.serialize_field("verdict", &self.verdict)?;
        st.serialize_field("code", &self.code)?;
        st.serialize_field("detail", &self.detail.get(Lang::En))?;
        st.end()
    }
}

impl Check {
    fn ok(id: impl Into<CheckId>, detail: Said) -> Self {
        Self { id: id.into(), verdict: Verdict::Ok, code: None, detail }
    }
    fn bad(id: impl Into<CheckId>, verdict: Verdict, code: Code, detail: Said) -> Self {
        Self { id: id.into(), verdict, code: Some(code), detail }
    }
}

/// What `diagnose` checks, and with what.
pub struct Options<'a> {
    /// The agent's configuration.
    pub config: &'a Config,
    /// Where the configuration came from, for the report.
    pub config_source: String,
    /// Check this reader only.
    pub reader: Option<String>,
    /// Check that this origin is configured.
    pub origin: Option<String>,
    /// Longest wait for one card or network call.
    pub timeout: Duration,
    /// The way to the card: the agent's (the tray), or the command's own (`cpx-agent diagnose`).
    pub cards: &'a CardService,
    /// The agent's data folder (its local CA).
    pub data_dir: std::path::PathBuf,
}

/// Runs the checks in order, from the PC/SC service to the sites: the first not fine is the fault.
pub fn run(opts: &Options) -> Vec<Check> {
    let mut checks = Vec::new();
    card_checks(opts, &mut checks);
    checks.push(loopback_port(opts.config.port));
    checks.push(loopback_trust(&opts.data_dir));
    checks.push(key_store(opts.config.key_store, &opts.data_dir));
    let pki = match opts.config.pki {
        PkiPolicy::Production => detail::PKI_PRODUCTION,
        PkiPolicy::Test => detail::PKI_TEST,
        PkiPolicy::Both => detail::PKI_BOTH,
    };
    checks.push(Check::ok(
        CheckKind::Configuration,
        Said::new(detail::CONFIGURATION)
            .list("source", provenance_said(&opts.config.provenance))
            .with("sites", opts.config.sites.len())
            .with("port", opts.config.port)
            .word("pki", pki),
    ));
    policy_checks(&opts.config.provenance, &mut checks);
    if let Some(origin) = &opts.origin {
        checks.push(match opts.config.site(origin) {
            Some(site) => Check::ok(
                CheckKind::Site,
                match &site.mtls_endpoint {
                    Some(endpoint) => Said::new(detail::SITE_ENDPOINT)
                        .with("origin", &site.origin)
                        .with("endpoint", endpoint.as_str()),
                    None => Said::new(detail::SITE_NO_ENDPOINT).with("origin", &site.origin),
                },
            ),
            None => Check::bad(
                CheckKind::Site,
                Verdict::Fail,
                Code::SiteNotConfigured,
                Said::new(detail::SITE_NOT_CONFIGURED).with("origin", origin),
            ),
        });
    }
    for site in opts.config.sites.iter().filter(|s| s.mtls_endpoint.is_some()) {
        let (way, tcp) = portal_way(site, &opts.config.proxy, opts.timeout);
        checks.push(way);
        // The way failed: the endpoint check would only say it again.
        let Some(tcp) = tcp else { continue };
        let (endpoint, server_date) = portal_endpoint(site, tcp, opts.timeout);
        let ok = endpoint.verdict == Verdict::Ok;
        checks.push(endpoint);
        if ok {
            checks.push(clock(&site.origin, server_date, now_unix()));
        }
    }
    checks
}

/// Which source set which keys, in words (the same as [`crate::platform::config::Provenance::describe`], said in
/// either language).
fn provenance_said(p: &crate::platform::config::Provenance) -> Vec<Said> {
    let keys = |said: Said, keys: &[String]| match keys.is_empty() {
        true => said.word("keys", detail::CONFIG_NOTHING),
        false => said.with("keys", keys.join(", ")),
    };
    let mut parts: Vec<Said> = p
        .policies
        .iter()
        .map(|(source, k)| keys(Said::new(detail::CONFIG_POLICY_SETS).with("source", source), k))
        .collect();
    if let Some(u) = &p.user_file {
        parts.push(keys(Said::new(detail::CONFIG_USER_SETS).with("path", u.display()), &p.from_user));
    }
    parts.push(Said::new(if parts.is_empty() {
        detail::CONFIG_DEFAULTS
    } else {
        detail::CONFIG_REST_DEFAULTS
    }));
    if let Some(by) = &p.user_sites_off_by {
        parts.push(Said::new(detail::CONFIG_USER_SITES_OFF).with("by", by));
    }
    parts
}

/// What the managed policy sets and from where (one `key = value  (source)` per setting), then one warning
/// per malformed key (`policy_problem:KEY`) naming its source, the reason and the safe default in force.
fn policy_checks(provenance: &crate::platform::config::Provenance, checks: &mut Vec<Check>) {
    let managed = provenance.managed_lines();
    let mut detail = vec![if managed.is_empty() {
        Said::new(detail::POLICY_NOTHING)
    } else {
        Said::new(detail::POLICY_MANAGED).with("settings", managed.join("; "))
    }];
    if let Some(by) = &provenance.user_sites_off_by {
        detail.push(Said::new(detail::POLICY_USER_SITES_OFF).with("by", by));
    }
    checks.push(Check::ok(CheckKind::Policy, Said::new(detail::LIST).list("items", detail)));
    for p in &provenance.problems {
        checks.push(Check::bad(
            CheckKind::PolicyProblem.at(&p.key),
            Verdict::Warn,
            Code::PolicyMalformed,
            Said::new(detail::POLICY_PROBLEM)
                .with("source", &p.source)
                .with("reason", &p.reason)
                .with("instead", &p.instead),
        ));
    }
}

fn card_checks(opts: &Options, checks: &mut Vec<Check>) {
    // Through the card service, like every card access: a login in progress is waited for (up to the card
    // timeout).
    if let Err(code) = opts.cards.blocking(|cards| reader_checks(opts, cards, checks)) {
        checks.push(Check::bad(CheckKind::Card, Verdict::Fail, code, Said::new(detail::CARD_BUSY)));
    }
}

fn reader_checks(opts: &Options, cards: &CardService, checks: &mut Vec<Check>) {
    let readers = match cards.readers() {
        Ok(r) => r,
        Err(e) => {
            return checks.push(Check::bad(
                CheckKind::PcscService,
                Verdict::Fail,
                Code::from(&e),
                Said::new(detail::PCSC_ERROR).with("error", e),
            ))
        }
    };
    checks.push(Check::ok(CheckKind::PcscService, Said::new(detail::PCSC_RUNNING)));
    let readers: Vec<_> =
        readers.into_iter().filter(|r| opts.reader.as_deref().is_none_or(|n| n == r.name)).collect();
    if readers.is_empty() {
        let code = if opts.reader.is_some() { Code::ReaderUnavailable } else { Code::NoReader };
        return checks.push(Check::bad(
            CheckKind::Readers,
            Verdict::Fail,
            code,
            Said::new(detail::NO_READER_LISTED),
        ));
    }
    let names = readers.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ");
    checks.push(Check::ok(CheckKind::Readers, Said::new(detail::READERS_LISTED).with("readers", names)));
    for r in &readers {
        pinpad_check(&r.name, opts.config.pinpad, opts.timeout, checks);
    }
    if readers.iter().all(|r| r.state == Slot::Empty) {
        return checks.push(Check::bad(
            CheckKind::Card,
            Verdict::Fail,
            Code::NoCard,
            Said::new(detail::NO_CARD_ANYWHERE),
        ));
    }
    for r in readers.iter().filter(|r| r.state != Slot::Empty) {
        one_card(opts, cards, r, checks);
    }
}

/// A reader that says it has a PIN pad: named, with whether its keypad takes the code porteur. Readers
/// without one, or that do not answer the question, add nothing.
fn pinpad_check(reader: &str, policy: crate::card::PinPadPolicy, timeout: Duration, checks: &mut Vec<Check>) {
    use crate::card::PinPadUse;
    let Ok(pad) = cpx_pcsc::pinpad::reader_pin_pad(reader, timeout) else { return };
    if !pad.features.can_verify() {
        return;
    }
    let said = match PinPadUse::decide(policy, reader, &pad.features) {
        PinPadUse::QuirkListed { entry } => Said::new(detail::PINPAD_QUIRK_LISTED).with("entry", entry),
        PinPadUse::Used { .. } => Said::new(detail::PINPAD_USED),
        PinPadUse::OffByPolicy => Said::new(detail::PINPAD_OFF),
        // `_START`/`_FINISH` only: the agent verifies with `_DIRECT`.
        PinPadUse::None => Said::new(detail::PINPAD_NOT_USABLE),
    };
    checks.push(Check::ok(CheckKind::PinPad.at(reader), said));
}

fn one_card(opts: &Options, cards: &CardService, r: &cpx_pcsc::ReaderInfo, checks: &mut Vec<Check>) {
    let at = |kind: CheckKind| kind.at(&r.name);
    let atr = hex::encode_upper(&r.atr);
    let unusable = match r.state {
        Slot::Mute => Some((Code::CardMute, detail::NO_ATR)),
        Slot::Exclusive => Some((Code::CardInUse, detail::HELD_EXCLUSIVELY)),
        Slot::Unavailable => Some((Code::ReaderUnavailable, detail::READER_UNAVAILABLE)),
        _ => None,
    };
    if let Some((code, said)) = unusable {
        return checks.push(Check::bad(at(CheckKind::Card), Verdict::Fail, code, Said::new(said)));
    }
    let present = || Said::new(detail::CARD_PRESENT).with("atr", &atr);
    // Everything read from the card, never from the cache: the check is about the card's content.
    let mut card = match cards.open_card(&r.name, Some(&r.atr), &CertCache::memory()) {
        Ok(c) => c,
        Err(e) => {
            let parsed = cpx_card::atr::parse(&r.atr);
            let detail = Said::new(detail::OPEN_FAILED)
                .with("atr", &atr)
                .with("protocols", format!("{:?}", parsed.protocols))
                .with("historical", &parsed.historical)
                .with("error", &e);
            // Named by its ATR or EF.SN.ICC, and it answered: the card type is known, its content is at fault.
            if let (Some(generation), false) =
                (e.recognised(), matches!(e.root(), cpx_card::CardError::Pcsc(_)))
            {
                checks.push(Check::ok(at(CheckKind::Card), present()));
                let by = if cpx_card::atr::recognise(&r.atr).is_some() {
                    detail::TYPE_BY_ATR_TABLE
                } else {
                    detail::TYPE_BY_SERIAL
                };
                checks.push(Check::ok(
                    at(CheckKind::CardType),
                    Said::new(by).with("generation", cpx_card::generation_name(generation)),
                ));
                return checks.push(Check::bad(
                    at(CheckKind::CardContent),
                    Verdict::Fail,
                    Code::from(&e),
                    detail,
                ));
            }
            let code = match Code::from(&e) {
                Code::CardTimeout => Code::CardMute,
                c => c,
            };
            let kind = if code == Code::CardNotCpx { CheckKind::CardType } else { CheckKind::Card };
            return checks.push(Check::bad(at(kind), Verdict::Fail, code, detail));
        }
    };
    checks.push(Check::ok(at(CheckKind::Card), present()));
    let info = card.info().clone();
    checks.push(match &info.recognition {
        Recognition::AtrTable { label } => Check::ok(
            at(CheckKind::CardType),
            Said::new(detail::TYPE_LISTED)
                .with("label", label)
                .with("serial", &info.serial)
                .with("kind", info.card_type.code()),
        ),
        Recognition::IssuerOnly => {
            let parsed = cpx_card::atr::parse(&info.atr);
            Check::bad(
                at(CheckKind::CardType),
                Verdict::Warn,
                Code::CardUnlistedVariant,
                Said::new(detail::TYPE_UNLISTED)
                    .with("atr", &atr)
                    .with("protocols", format!("{:?}", parsed.protocols))
                    .with("historical", &parsed.historical)
                    .with("generation", format!("{:?}", info.generation))
                    .with("kind", info.card_type.code()),
            )
        }
    });
    let pin = at(CheckKind::Pin);
    if info.interface == cpx_card::Interface::Contactless {
        checks.push(Check::bad(pin, Verdict::Fail, Code::Contactless, Said::new(detail::CONTACTLESS)));
    } else {
        let tries = |n: u8, max: u8| Said::new(detail::TRIES_LEFT).with("n", n).with("max", max);
        checks.push(match card.pin_status() {
            Ok(Some(p)) if p.blocked() => {
                Check::bad(pin, Verdict::Fail, Code::PinBlocked, tries(0, p.max_tries))
            }
            Ok(Some(p)) if p.tries_left == 1 => {
                Check::bad(pin, Verdict::Warn, Code::PinLastTry, tries(1, p.max_tries))
            }
            Ok(Some(p)) => Check::ok(pin, tries(p.tries_left, p.max_tries)),
            Ok(None) => Check::bad(pin, Verdict::Fail, Code::Contactless, Said::new(detail::NO_PIN)),
            Err(e) => Check::bad(
                pin,
                Verdict::Fail,
                Code::about_card(&e, Some(info.generation)),
                Said::new(detail::CARD_ERROR).with("error", e),
            ),
        });
    }
    let id = card.identity().clone();
    let dates = |text| {
        Said::new(text)
            .with("from", cpx_card::identity::date(id.not_before))
            .with("to", cpx_card::identity::date(id.not_after))
            .with("issuer", &id.issuer)
    };
    let certificate = at(CheckKind::Certificate);
    checks.push(match (id.validity_at(now_unix()), id.test_pki, opts.config.pki) {
        (Validity::Expired, ..) => {
            Check::bad(certificate, Verdict::Fail, Code::CertificateExpired, dates(detail::CERTIFICATE_DATES))
        }
        (Validity::NotYetValid, ..) => Check::bad(
            certificate,
            Verdict::Fail,
            Code::CertificateNotYetValid,
            dates(detail::CERTIFICATE_DATES),
        ),
        (_, true, PkiPolicy::Production) => Check::bad(
            certificate,
            Verdict::Fail,
            Code::CardTestOnProduction,
            dates(detail::CERTIFICATE_DATES),
        ),
        (_, false, PkiPolicy::Test) => Check::bad(
            certificate,
            Verdict::Fail,
            Code::CardTestOnProduction,
            dates(detail::CERTIFICATE_PRODUCTION_CARD),
        ),
        _ => Check::ok(
            certificate,
            dates(detail::CERTIFICATE_HOLDER).with("name", id.display_name()).with("id", &id.national_id),
        ),
    });
}

/// Which loopback identity the agent presents (the machine's, made by the installer, or this user's), and
/// whether the stores the browsers read trust its local CA.
fn loopback_trust(data_dir: &std::path::Path) -> Check {
    let machine = crate::platform::machine_trust::machine_dir();
    let dir = machine.display();
    match crate::platform::machine_trust::identity(&machine) {
        Some(Ok(identity))
            if crate::platform::localca::due_for_renewal(
                &identity.cert_pem,
                time::OffsetDateTime::now_utc(),
            ) =>
        {
            let detail = Said::new(detail::MACHINE_RENEW)
                .with("dir", &dir)
                .with("days", crate::platform::localca::RENEW_BEFORE_DAYS);
            return Check::bad(CheckKind::LoopbackTrust, Verdict::Warn, Code::LoopbackNotTrusted, detail);
        }
        Some(Ok(_)) => return machine_trust_check(&machine),
        Some(Err(e)) => {
            return Check::bad(
                CheckKind::LoopbackTrust,
                Verdict::Fail,
                Code::LoopbackNotTrusted,
                Said::new(detail::MACHINE_BROKEN).with("dir", &dir).with("error", e),
            );
        }
        None => {}
    }
    let path = data_dir.join(crate::platform::localca::CA_FILE);
    let Ok(pem) = std::fs::read_to_string(&path) else {
        return Check::ok(
            CheckKind::LoopbackTrust,
            Said::new(detail::USER_NO_CA).with("path", path.display()),
        );
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let stores = crate::platform::browser_trust::check(&pem, &home);
    let said = |store: &str, t: Option<bool>| {
        let text = match t {
            Some(true) => detail::STORE_TRUSTED,
            Some(false) => detail::STORE_NOT_TRUSTED,
            None => detail::STORE_UNREADABLE,
        };
        Said::new(text).with("store", store)
    };
    let detail = Said::new(detail::USER_STORES)
        .with("path", path.display())
        .list("stores", stores.iter().map(|s| said(&s.store, s.trusted)).collect());
    if stores.is_empty() {
        Check::ok(CheckKind::LoopbackTrust, Said::new(detail::NO_BROWSER_STORE).with("path", path.display()))
    } else if stores.iter().any(|s| s.trusted == Some(true)) {
        Check::ok(CheckKind::LoopbackTrust, detail)
    } else {
        Check::bad(CheckKind::LoopbackTrust, Verdict::Warn, Code::LoopbackNotTrusted, detail)
    }
}

/// Where this user's keys are: the keyring, or (a warning with the fix) files because no keyring was usable.
fn key_store(kind: crate::platform::config::KeyStoreKind, data_dir: &std::path::Path) -> Check {
    match crate::platform::secrets::keyring_fallback(kind, data_dir) {
        Some(dir) => Check::bad(
            CheckKind::KeyStore,
            Verdict::Warn,
            Code::KeyringUnavailable,
            Said::new(detail::KEYS_IN_FILES).with("folder", dir.display()),
        ),
        None if kind == crate::platform::config::KeyStoreKind::File => Check::ok(
            CheckKind::KeyStore,
            Said::new(detail::KEYS_IN_FILES_BY_CHOICE)
                .with("folder", data_dir.join(crate::platform::secrets::PRIVATE_DIR).display()),
        ),
        None => Check::ok(CheckKind::KeyStore, Said::new(detail::KEYS_IN_KEYRING)),
    }
}

/// The machine's identity: every machine-wide store the installer wrote must still trust its CA.
fn machine_trust_check(dir: &std::path::Path) -> Check {
    let verdicts = match crate::platform::machine_trust::check(dir) {
        Ok(v) => v,
        Err(e) => {
            return Check::bad(
                CheckKind::LoopbackTrust,
                Verdict::Fail,
                Code::LoopbackNotTrusted,
                Said::new(detail::MACHINE_UNCHECKED).with("dir", dir.display()).with("error", e),
            )
        }
    };
    let said = |v: &crate::platform::machine_trust::Verdict| {
        Said::new(if v.trusted { detail::STORE_TRUSTED } else { detail::STORE_NOT_TRUSTED })
            .with("store", &v.store)
    };
    let detail = Said::new(detail::MACHINE_STORES)
        .with("dir", dir.display())
        .list("stores", verdicts.iter().map(said).collect());
    if verdicts.iter().all(|v| v.trusted) {
        Check::ok(CheckKind::LoopbackTrust, detail)
    } else {
        Check::bad(CheckKind::LoopbackTrust, Verdict::Warn, Code::LoopbackNotTrusted, detail)
    }
}

/// Is the port free, or held by an Agent CPx (it answers `{"agent": "cpx-agent"}` on /v1/status)?
fn loopback_port(port: u16) -> Check {
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return Check::ok(CheckKind::LoopbackPort, Said::new(detail::PORT_FREE).with("port", port));
    }
    match probe_agent(port) {
        true => Check::ok(CheckKind::LoopbackPort, Said::new(detail::PORT_OURS).with("port", port)),
        false => Check::bad(
            CheckKind::LoopbackPort,
            Verdict::Fail,
            Code::AgentPortTaken,
            Said::new(detail::PORT_TAKEN).with("port", port),
        ),
    }
}

/// A TLS connection to the loopback port (any certificate: this only asks who is there) and a status GET.
fn probe_agent(port: u16) -> bool {
    use http_body_util::BodyExt;
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
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return false;
    };
    let status = async {
        let tcp =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(("127.0.0.1", port)))
                .await
                .ok()?
                .ok()?;
        let tls =
            tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await.ok()?;
        let request =
            hyper::Request::get("/v1/status").header(hyper::header::HOST, format!("127.0.0.1:{port}"));
        let body = http_exchange(tls, request).await?.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).ok()
    };
    let status =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), status).await.ok().flatten() });
    status.is_some_and(|s| s["agent"] == "cpx-agent")
}

/// One request on `tls` (HTTP/1.1 by hyper, `Connection: close`): its answer, `None` when there is none.
async fn http_exchange(
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    request: hyper::http::request::Builder,
) -> Option<hyper::Response<hyper::body::Incoming>> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.ok()?;
    tokio::spawn(connection);
    let request = request
        .header(hyper::header::CONNECTION, "close")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .ok()?;
    sender.send_request(request).await.ok()
}

/// The way to a site's mTLS endpoint: the proxy chosen for it (and what chose it: the policy, the
/// environment, the desktop's or the OS's settings) and the `CONNECT` tunnel through it, or straight to
/// the endpoint (every address of its name). The stream, when it opened, for the endpoint check.
fn portal_way(
    site: &crate::platform::config::Site,
    setting: &crate::platform::proxy::ProxySetting,
    timeout: Duration,
) -> (Check, Option<std::net::TcpStream>) {
    use crate::platform::proxy;
    let check = CheckKind::PortalWay.at(&site.origin);
    let Some(ep) = &site.mtls_endpoint else {
        let said = Said::new(detail::SITE_NO_ENDPOINT).with("origin", &site.origin);
        return (Check::bad(check, Verdict::Fail, Code::SiteNotConfigured, said), None);
    };
    let route = proxy::route_for(setting, &ep.host, ep.port);
    let said = |text| {
        let s = Said::new(text).with("host", &ep.host).with("port", ep.port).with("source", &route.source);
        match &route.proxy {
            Some(p) => s.with("proxy", p),
            None => s,
        }
    };
    let (ok, failed) = match route.proxy {
        Some(_) => (detail::WAY_PROXY_OK, detail::WAY_PROXY_FAILED),
        None => (detail::WAY_DIRECT_OK, detail::WAY_DIRECT_FAILED),
    };
    match proxy::open_blocking(&route, &ep.host, ep.port, timeout) {
        Ok(tcp) => (Check::ok(check, said(ok)), Some(tcp)),
        Err(e) => (Check::bad(check, Verdict::Fail, e.code(), said(failed).with("error", &e)), None),
    }
}

/// The site's mTLS endpoint, over the stream [`portal_way`] opened: TLS with a certificate from the configured roots (handshake
/// without the card). When it also answers HTTP without the card, its `Date` (Unix time) for the clock check.
fn portal_endpoint(
    site: &crate::platform::config::Site,
    tcp: std::net::TcpStream,
    timeout: Duration,
) -> (Check, Option<i64>) {
    let check = CheckKind::PortalEndpoint.at(&site.origin);
    let fail = |code: Code, detail: Said| (Check::bad(check.clone(), Verdict::Fail, code, detail), None);
    let Some(ep) = &site.mtls_endpoint else {
        return fail(
            Code::SiteNotConfigured,
            Said::new(detail::SITE_NO_ENDPOINT).with("origin", &site.origin),
        );
    };
    let at = |text| Said::new(text).with("host", &ep.host).with("port", ep.port);
    // The same roots the login uses.
    let store = match crate::card::login::load_roots(site) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                e.code,
                Said::new(detail::ENDPOINT_ROOTS).with("error", e.detail.unwrap_or_default()),
            )
        }
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config =
        match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => b.with_root_certificates(store).with_no_client_auth(),
            Err(e) => return fail(Code::AgentError, Said::new(detail::ENDPOINT_TLS_SETUP).with("error", e)),
        };
    let Ok(name) = rustls::pki_types::ServerName::try_from(ep.host.clone()) else {
        return fail(Code::SiteNotConfigured, at(detail::ENDPOINT_BAD_HOST));
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(Code::AgentError, Said::new(detail::ENDPOINT_TLS_SETUP).with("error", e)),
    };
    let handshake = runtime.block_on(async {
        tcp.set_nonblocking(true)?;
        let tcp = tokio::net::TcpStream::from_std(tcp)?;
        let connect = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp);
        tokio::time::timeout(timeout, connect).await.unwrap_or_else(|_| {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))
        })
    });
    let tls = match handshake {
        Ok(tls) => Some(tls),
        // A server that requires a client certificate may end the handshake here: the server's
        // certificate was verified before that, which is what this check is about.
        Err(e) if refused_without_card(&e) => None,
        Err(e) => return fail(Code::PortalTls, at(detail::ENDPOINT_TLS).with("error", e)),
    };
    let date = tls.and_then(|tls| {
        runtime.block_on(async { tokio::time::timeout(timeout, http_date(tls, ep)).await.ok().flatten() })
    });
    (Check::ok(check, at(detail::ENDPOINT_OK)), date)
}

/// The server ended the handshake with an alert because no client certificate came (TLS 1.3
/// `certificate_required`, TLS 1.2 `handshake_failure`).
fn refused_without_card(e: &std::io::Error) -> bool {
    use rustls::AlertDescription::{CertificateRequired, HandshakeFailure};
    matches!(
        e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::AlertReceived(CertificateRequired | HandshakeFailure))
    )
}

/// `HEAD path` on the open TLS connection; the answer's `Date` as Unix time. `None` when the server
/// answers nothing without the card (TLS 1.3 servers refuse only after the handshake) or sends no date.
async fn http_date(
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ep: &Endpoint,
) -> Option<i64> {
    let request = hyper::Request::head(ep.path.as_str()).header(hyper::header::HOST, ep.host_header());
    let answer = http_exchange(tls, request).await?;
    parse_http_date(answer.headers().get(hyper::header::DATE)?.to_str().ok()?)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 HTTP-date) as Unix time.
fn parse_http_date(s: &str) -> Option<i64> {
    let at = httpdate::parse_http_date(s).ok()?;
    i64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()
}

/// The computer's clock against the server's `Date`: a few minutes off make TLS and login challenges fail.
fn clock(origin: &str, server: Option<i64>, now: i64) -> Check {
    let check = CheckKind::Clock.at(origin);
    let Some(server) = server else {
        return Check::ok(check, Said::new(detail::CLOCK_NOT_MEASURED));
    };
    let skew = now - server;
    let detail = Said::new(detail::CLOCK_SKEW).with("skew", format!("{skew:+}"));
    match skew.abs() {
        0..=60 => Check::ok(check, detail),
        61..=300 => Check::bad(check, Verdict::Warn, Code::ClockSkew, detail),
        _ => Check::bad(check, Verdict::Fail, Code::ClockSkew, detail),
    }
}

/// The first check that is not fine: the fault to act on.
pub fn first_fault(checks: &[Check]) -> Option<&Check> {
    checks.iter().find(|c| c.verdict != Verdict::Ok)
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

    /// The alerts of a server that wants a client certificate, as rustls types them under the io::Error.
    #[test]
    fn a_server_refusing_without_the_card_is_told_by_its_alert() {
        use rustls::AlertDescription as A;
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        assert!(refused_without_card(&io(rustls::Error::AlertReceived(A::CertificateRequired))));
        assert!(refused_without_card(&io(rustls::Error::AlertReceived(A::HandshakeFailure))));
        assert!(!refused_without_card(&io(rustls::Error::AlertReceived(A::BadCertificate))));
        assert!(!refused_without_card(&io(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))));
        let text = std::io::Error::other("received fatal alert: CertificateRequired");
        assert!(!refused_without_card(&text), "the type decides, not the words");
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
        let managed = checks[0].detail.get(Lang::Fr);
        assert!(
            managed.contains(&format!("pki = \"production\"  ({at})"))
                && managed.contains(&format!("site https://portail.example.fr  ({at})")),
            "{managed}"
        );
        assert!(managed.contains("allow_user_sites = false"), "{managed}");
        let problem = &checks[1];
        assert_eq!(
            (problem.id.to_string().as_str(), problem.verdict, problem.code),
            ("policy_problem:allow_user_sites", Verdict::Warn, Some(Code::PolicyMalformed))
        );
        let detail = problem.detail.get(Lang::En);
        assert!(detail.starts_with(&at) && detail.contains("allow_user_sites = false"), "{detail}");
        assert_eq!(problem.id.kind.title().fr, "Clé de configuration invalide");
        assert_eq!(problem.id.about.as_deref(), Some("allow_user_sites"));
    }

    fn is(a: Text, b: Text) -> bool {
        a.fr == b.fr && a.en == b.en
    }

    /// Every check is said in the user's language: its title and each text its detail is made of come
    /// from the catalogue, and a detail in French is not the English one.
    fn said_in_both_languages(checks: &[Check]) {
        for c in checks {
            assert!(crate::messages::check_title::ALL.iter().any(|t| is(*t, c.id.kind.title())), "{}", c.id);
            for t in c.detail.texts() {
                assert!(
                    crate::messages::detail::ALL.iter().any(|d| is(*d, t)),
                    "{}: « {} » is not in the catalogue's details",
                    c.id,
                    t.en
                );
            }
            let (fr, en) = (c.detail.get(Lang::Fr), c.detail.get(Lang::En));
            assert_ne!(fr, en, "{}: the French detail is the English one", c.id);
        }
    }

    #[test]
    fn the_configuration_is_said_as_describe_says_it_in_english() {
        let dir = std::env::temp_dir().join(format!("cpx-diag-provenance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (user, policy) = (dir.join("config.toml"), dir.join("policy.toml"));
        std::fs::write(&user, "log_level = \"debug\"\n").unwrap();
        std::fs::write(&policy, "port = 4\nallow_user_sites = false\n").unwrap();
        let (_, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        let said = Said::new(detail::LIST).list("items", provenance_said(&p));
        assert_eq!(said.get(Lang::En), p.describe());
        assert!(said.get(Lang::Fr).contains("le reste : valeurs par défaut"), "{}", said.get(Lang::Fr));
    }

    #[test]
    fn check_ids_serialise_as_their_stable_names() {
        let names: std::collections::HashSet<_> = CheckKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), CheckKind::ALL.len());
        assert_eq!(CheckKind::Card.at("Lecteur 0").to_string(), "card:Lecteur 0");
        assert_eq!(serde_json::to_value(CheckId::from(CheckKind::LoopbackPort)).unwrap(), "loopback_port");
        let c = clock("https://portail.example.fr", Some(1000), 1030);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["check"], "clock:https://portail.example.fr");
        assert_eq!(v["detail"], "+30 s against the endpoint's Date", "the report's form is English");
        for kind in CheckKind::ALL {
            assert_ne!(kind.title().fr, kind.title().en, "{} is not translated", kind.name());
        }
    }

    /// A run over a fixture (whatever PC/SC says here: a stopped service is a check too), with a malformed
    /// policy key and a site, then each check built directly: no English in the French details.
    #[test]
    fn every_detail_comes_from_the_catalogue_in_both_languages() {
        let dir = std::env::temp_dir().join(format!("cpx-diag-words-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let policy = dir.join("policy.toml");
        std::fs::write(
            &policy,
            "port = 1\nallow_user_sites = \"non\"\n[[site]]\norigin = \"https://portail.example.fr\"\n",
        )
        .unwrap();
        let (config, _) = Config::load_layered(None, Some(&policy)).unwrap();
        let timeout = Duration::from_millis(200);
        let cards = CardService::new(CertCache::memory(), timeout, timeout);
        let opts = Options {
            cards: &cards,
            config: &config,
            config_source: "fixture".into(),
            reader: Some("no such reader".into()),
            origin: Some("https://autre.example.fr".into()),
            timeout: Duration::from_millis(200),
            data_dir: dir.join("data"),
        };
        let mut checks = run(&opts);
        assert!(checks.iter().any(|c| c.id.kind == CheckKind::PolicyProblem), "the fixture's malformed key");
        assert!(checks
            .iter()
            .any(|c| c.id.kind == CheckKind::Site && c.code == Some(Code::SiteNotConfigured)));
        checks.extend([
            clock("o", None, 0),
            clock("o", Some(0), 400),
            loopback_port(0),
            machine_trust_check(&dir.join("no machine identity")),
        ]);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data").join(crate::platform::localca::CA_FILE), "not a certificate")
            .unwrap();
        checks.push(loopback_trust(&dir.join("data")));
        said_in_both_languages(&checks);
        let fr: Vec<String> =
            checks.iter().map(|c| crate::cli::output::check_text(Lang::Fr, c, false)).collect();
        for english in
            [": running", "not in the configuration", "not measured", "free (the agent", "no browser store"]
        {
            assert!(!fr.iter().any(|l| l.contains(english)), "« {english} » in French: {fr:#?}");
        }
    }
}
