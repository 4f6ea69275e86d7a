//! Which sites may use the card. Managed policy (the configuration's `[[site]]` entries) comes first and
//! is never asked about. Any other origin is asked about once in the tray app (« une fois », « toujours »,
//! « refuser »); « toujours » is kept per user in `sites.json` in the data folder, sealed with an HMAC whose
//! key lives in the keyring, so that a program that can write the file cannot add a site silently. A file
//! whose seal does not match is set aside (`sites.json.tampered`) and no approval is trusted. « Refuser »
//! keeps the site, and every site of its registrable domain, from asking again for a while
//! (`refused_site_quiet_seconds`), and dialogs are rate-limited per registrable domain and overall
//! ([`DIALOGS_PER_DOMAIN`], [`DIALOGS_OVERALL`]): a page cannot spam dialogs, nor rotate sub-domains to.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::card::pin_prompt::PromptError;
use crate::loopback::api::ApiError;
use crate::messages::{Code, Lang};
use crate::platform::secrets::{SecretError, SecretStore};

/// The name of the integrity key in the secret store.
const KEY_NAME: &str = "sites-integrity-key";
const FILE_NAME: &str = "sites.json";

/// What the professional answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Once,
    Always,
    Refuse,
}

/// What the consent dialog shows.
#[derive(Debug, Clone)]
pub struct ConsentRequest {
    pub origin: String,
    pub lang: Lang,
}

/// Asks the professional whether a site not in policy may use the card (the tray app's dialog).
pub trait ConsentPrompt: Send + Sync {
    fn ask(&self, request: &ConsentRequest) -> Result<Decision, PromptError>;
}

/// One site the professional allowed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub origin: String,
    /// Unix time of the approval.
    pub approved_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("the integrity key in the keyring is damaged; remove « {KEY_NAME} » of service cpx-agent")]
    BadKey,
}

#[derive(Serialize, Deserialize)]
struct SealedFile {
    version: u32,
    sites: Vec<Approval>,
    /// Hex HMAC-SHA256 of the canonical JSON of `sites`.
    mac: String,
}

/// The professional's approvals, in memory and on disk.
pub struct Approvals {
    path: PathBuf,
    key: Zeroizing<Vec<u8>>,
    sites: Mutex<Vec<Approval>>,
    /// The file on disk was altered outside the agent (and set aside).
    pub tampered: bool,
}

impl Approvals {
    /// Opens (or starts) the approvals of `data_dir`, creating the integrity key on first use.
    pub fn open(data_dir: &Path, store: &dyn SecretStore) -> Result<Self, ConsentError> {
        let key = match store.get(KEY_NAME)? {
            Some(hex_key) => Zeroizing::new(hex::decode(hex_key.trim()).map_err(|_| ConsentError::BadKey)?),
            None => {
                let mut key = Zeroizing::new(vec![0u8; 32]);
                getrandom::getrandom(&mut key).map_err(|e| ConsentError::File {
                    path: data_dir.into(),
                    source: std::io::Error::other(e),
                })?;
                store.set(KEY_NAME, &hex::encode(&*key))?;
                key
            }
        };
        let path = data_dir.join(FILE_NAME);
        let mut approvals = Self { path, key, sites: Mutex::new(Vec::new()), tampered: false };
        approvals.load()?;
        Ok(approvals)
    }

    fn seal(&self, sites: &[Approval]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&serde_json::to_vec(sites).unwrap_or_default());
        hex::encode(mac.finalize().into_bytes())
    }

    fn load(&mut self) -> Result<(), ConsentError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(ConsentError::File { path: self.path.clone(), source }),
        };
        let sealed: Option<SealedFile> = serde_json::from_slice(&text).ok();
        let genuine = sealed.as_ref().is_some_and(|f| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
            mac.update(&serde_json::to_vec(&f.sites).unwrap_or_default());
            hex::decode(&f.mac).is_ok_and(|m| mac.verify_slice(&m).is_ok())
        });
        match sealed {
            Some(f) if genuine => *self.sites.lock().unwrap_or_else(|p| p.into_inner()) = f.sites,
            _ => {
                // Keep the altered file for the helpdesk; trust nothing in it.
                let aside = self.path.with_extension("json.tampered");
                tracing::warn!(path = %self.path.display(), aside = %aside.display(), "approved sites file altered outside the agent: set aside, no approval trusted");
                std::fs::rename(&self.path, &aside)
                    .map_err(|source| ConsentError::File { path: self.path.clone(), source })?;
                self.tampered = true;
            }
        }
        Ok(())
    }

    fn save(&self, sites: &[Approval]) -> Result<(), ConsentError> {
        let err = |source| ConsentError::File { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let sealed = SealedFile { version: 1, sites: sites.to_vec(), mac: self.seal(sites) };
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&sealed).unwrap_or_default()).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }

    pub fn list(&self) -> Vec<Approval> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn contains(&self, origin: &str) -> bool {
        self.sites.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|a| a.origin == origin)
    }

    pub fn add(&self, origin: &str) -> Result<(), ConsentError> {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        if !sites.iter().any(|a| a.origin == origin) {
            sites.push(Approval { origin: origin.to_owned(), approved_at: crate::card::scan::now_unix() });
            self.save(&sites)?;
        }
        Ok(())
    }

    /// Removes an approval; whether there was one.
    pub fn remove(&self, origin: &str) -> Result<bool, ConsentError> {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let before = sites.len();
        sites.retain(|a| a.origin != origin);
        if sites.len() == before {
            return Ok(false);
        }
        self.save(&sites)?;
        Ok(true)
    }
}

/// Dialogs shown per registrable domain within [`DIALOG_WINDOW`].
pub const DIALOGS_PER_DOMAIN: usize = 2;
/// Dialogs shown in all within [`DIALOG_WINDOW`].
pub const DIALOGS_OVERALL: usize = 4;
pub const DIALOG_WINDOW: Duration = Duration::from_secs(60);

/// Second-level public suffixes under which the registrable domain has three labels. Not the whole
/// Public Suffix List: an approximation that errs on the strict side (more sites share one quota).
const SECOND_LEVEL_SUFFIXES: &[&str] = &[
    "gouv.fr",
    "asso.fr",
    "nom.fr",
    "com.fr",
    "tm.fr",
    "presse.fr",
    "co.uk",
    "org.uk",
    "ac.uk",
    "gov.uk",
    "nhs.uk",
    "co.jp",
    "com.au",
    "com.br",
    "co.nz",
    "co.za",
    "com.cn",
    "com.es",
    "com.pl",
    "co.it",
    "co.in",
];

/// The registrable domain of an https origin ("https://a.b.example.fr:8443" → "example.fr"): the rate
/// limits and a refusal apply to it, so that a page cannot rotate sub-domains to ask again and again.
/// An IP address or a single-label host is its own domain.
pub fn registrable_domain(origin: &str) -> String {
    let host = match url::Url::parse(origin).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Domain(name)) => name,
        // An address, IPv6 in brackets.
        Some(address) => return address.to_string(),
        None => origin.to_ascii_lowercase(),
    };
    let host = host.trim_end_matches('.');
    let labels: Vec<&str> = host.split('.').collect();
    let keep = match labels.len() {
        n if n >= 3 && SECOND_LEVEL_SUFFIXES.contains(&labels[n - 2..].join(".").as_str()) => 3,
        _ => 2,
    };
    labels[labels.len().saturating_sub(keep)..].join(".")
}

/// The gate of the sites outside policy, as the server uses it.
pub struct Consent {
    pub approvals: Arc<Approvals>,
    pub prompt: Arc<dyn ConsentPrompt>,
    /// Registrable domains refused lately, and when: refused again without a dialog for `quiet`, so that
    /// a page cannot keep asking (nor its sub-domains).
    refused: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// When dialogs were shown lately, and for which registrable domain.
    shown: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, String)>>,
    quiet: Duration,
}

impl Consent {
    /// The gate for this configuration and prompt: none without a prompt (`cpx-agent serve`), and none when
    /// `allow_user_sites` is false: then the professional's approvals (`sites.json`) are not even read and
    /// no dialog is shown; a site not in policy gets « not allowed » (docs/security.md, « Trust model »).
    pub fn for_config(
        config: &crate::platform::config::Config,
        data_dir: &Path,
        store: &dyn SecretStore,
        prompt: Option<Arc<dyn ConsentPrompt>>,
    ) -> Result<Option<Self>, ConsentError> {
        let Some(prompt) = prompt else { return Ok(None) };
        if !config.allow_user_sites {
            tracing::info!(
                "allow_user_sites = false: managed sites only, no consent dialog, approvals not read"
            );
            return Ok(None);
        }
        let approvals = Arc::new(Approvals::open(data_dir, store)?);
        Ok(Some(Self::new(approvals, prompt, Duration::from_secs(config.refused_site_quiet_seconds))))
    }

    pub fn new(approvals: Arc<Approvals>, prompt: Arc<dyn ConsentPrompt>, quiet: Duration) -> Self {
        Self { approvals, prompt, refused: Default::default(), shown: Default::default(), quiet }
    }

    /// Counts a dialog for `domain`, or refuses when the domain or everyone together asked too often.
    fn take_dialog(&self, domain: &str) -> Result<(), ApiError> {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        while shown.front().is_some_and(|(at, _)| at.elapsed() >= DIALOG_WINDOW) {
            shown.pop_front();
        }
        let for_domain = shown.iter().filter(|(_, d)| d == domain).count();
        if for_domain >= DIALOGS_PER_DOMAIN || shown.len() >= DIALOGS_OVERALL {
            tracing::warn!(%domain, for_domain, overall = shown.len(), "site consent not asked: too many dialogs lately");
            return Err(ApiError::new(Code::ConsentTooOften).detail(format!(
                "{for_domain} dialogs for {domain}, {} in all, in the last {} s",
                shown.len(),
                DIALOG_WINDOW.as_secs()
            )));
        }
        shown.push_back((std::time::Instant::now(), domain.to_owned()));
        Ok(())
    }

    /// The professional's answer about a site not in policy; « toujours » is remembered, « refuser » for
    /// a while.
    pub fn ask(&self, origin: &str, lang: Lang) -> Result<(), ApiError> {
        if self.approvals.contains(origin) {
            return Ok(()); // allowed while this request waited for the card
        }
        let domain = registrable_domain(origin);
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.retain(|_, at| at.elapsed() < self.quiet);
        if refused.contains_key(&domain) {
            return Err(ApiError::new(Code::SiteRefused)
                .detail(format!("{domain} refused a moment ago: not asked again yet")));
        }
        drop(refused);
        self.take_dialog(&domain)?;
        let decision = self.prompt.ask(&ConsentRequest { origin: origin.to_owned(), lang })?;
        tracing::info!(%origin, ?decision, "site consent");
        match decision {
            Decision::Refuse => {
                self.refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(domain, std::time::Instant::now());
                Err(ApiError::new(Code::SiteRefused))
            }
            Decision::Once => Ok(()),
            Decision::Always => {
                if let Err(e) = self.approvals.add(origin) {
                    tracing::warn!(error = %e, "approval not saved: the site will be asked about again");
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::secrets::FileStore;

    fn fresh() -> (PathBuf, FileStore) {
        let dir = std::env::temp_dir().join(format!(
            "cpx-consent-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = FileStore { dir: dir.join("secrets") };
        (dir, store)
    }

    #[test]
    fn approvals_survive_a_restart_and_removal_sticks() {
        let (dir, store) = fresh();
        let a = Approvals::open(&dir, &store).unwrap();
        a.add("https://a.example").unwrap();
        a.add("https://b.example").unwrap();
        a.add("https://a.example").unwrap();
        assert!(a.remove("https://b.example").unwrap());
        assert!(!a.remove("https://b.example").unwrap());
        let again = Approvals::open(&dir, &store).unwrap();
        assert!(!again.tampered);
        assert_eq!(again.list().iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(), ["https://a.example"]);
    }

    #[test]
    fn an_edited_file_is_set_aside_and_trusted_for_nothing() {
        let (dir, store) = fresh();
        Approvals::open(&dir, &store).unwrap().add("https://a.example").unwrap();
        let path = dir.join(FILE_NAME);
        let edited =
            std::fs::read_to_string(&path).unwrap().replace("https://a.example", "https://evil.example");
        std::fs::write(&path, edited).unwrap();
        let a = Approvals::open(&dir, &store).unwrap();
        assert!(a.tampered);
        assert!(!a.contains("https://evil.example") && !a.contains("https://a.example"));
        assert!(dir.join("sites.json.tampered").exists(), "the altered file is kept for the helpdesk");
    }

    #[test]
    fn a_file_sealed_with_another_key_is_not_trusted() {
        let (dir, store) = fresh();
        Approvals::open(&dir, &store).unwrap().add("https://a.example").unwrap();
        std::fs::remove_dir_all(dir.join("secrets")).unwrap();
        let a = Approvals::open(&dir, &store).unwrap();
        assert!(a.tampered && a.list().is_empty());
    }

    struct Counting {
        answer: Decision,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl ConsentPrompt for Counting {
        fn ask(&self, _: &ConsentRequest) -> Result<Decision, PromptError> {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(self.answer)
        }
    }

    #[test]
    fn registrable_domains() {
        for (origin, domain) in [
            ("https://a.b.example.fr", "example.fr"),
            ("https://example.fr:8443", "example.fr"),
            ("https://x.sante.gouv.fr", "sante.gouv.fr"),
            ("https://www.nhs.co.uk", "nhs.co.uk"),
            ("https://localhost", "localhost"),
            ("https://203.0.113.5:8443", "203.0.113.5"),
            ("https://[::1]:8443", "[::1]"),
            ("https://[0:0::1]", "[::1]"),
            ("https://Example.FR.", "example.fr"),
        ] {
            assert_eq!(registrable_domain(origin), domain, "{origin}");
        }
    }

    #[test]
    fn rotating_sub_domains_gets_no_new_dialog_and_dialogs_are_capped_overall() {
        let (dir, store) = fresh();
        let approvals = Arc::new(Approvals::open(&dir, &store).unwrap());
        let refuse = Arc::new(Counting { answer: Decision::Refuse, asked: Default::default() });
        let gate = Consent::new(approvals.clone(), refuse.clone(), Duration::from_secs(60));
        assert_eq!(gate.ask("https://a1.spam.example", Lang::Fr).unwrap_err().code, Code::SiteRefused);
        for i in 2..20 {
            assert_eq!(
                gate.ask(&format!("https://a{i}.spam.example"), Lang::Fr).unwrap_err().code,
                Code::SiteRefused
            );
        }
        assert_eq!(
            refuse.asked.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "the refusal covers the whole domain"
        );
        // « Une fois » each time: at most DIALOGS_PER_DOMAIN per window for one domain…
        let once = Arc::new(Counting { answer: Decision::Once, asked: Default::default() });
        let gate = Consent::new(approvals.clone(), once.clone(), Duration::from_secs(60));
        let answers: Vec<_> = (0..5)
            .map(|i| gate.ask(&format!("https://s{i}.one.example"), Lang::Fr).map_err(|e| e.code))
            .collect();
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), DIALOGS_PER_DOMAIN, "{answers:?}");
        assert!(answers.contains(&Err(Code::ConsentTooOften)));
        // …and at most DIALOGS_OVERALL for all domains together.
        let answers: Vec<_> = (0..10)
            .map(|i| gate.ask(&format!("https://site{i}.example"), Lang::Fr).map_err(|e| e.code))
            .collect();
        assert_eq!(
            answers.iter().filter(|a| a.is_ok()).count(),
            DIALOGS_OVERALL - DIALOGS_PER_DOMAIN,
            "{answers:?}"
        );
        assert_eq!(once.asked.load(std::sync::atomic::Ordering::Relaxed), DIALOGS_OVERALL);
    }

    #[test]
    fn a_refused_site_is_not_asked_again_for_a_while_an_allowed_one_never() {
        let (dir, store) = fresh();
        let approvals = Arc::new(Approvals::open(&dir, &store).unwrap());
        let refuse = Arc::new(Counting { answer: Decision::Refuse, asked: Default::default() });
        let gate = Consent::new(approvals.clone(), refuse.clone(), Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(gate.ask("https://spam.example", Lang::Fr).unwrap_err().code, Code::SiteRefused);
        }
        assert_eq!(refuse.asked.load(std::sync::atomic::Ordering::Relaxed), 1, "one dialog, then quiet");
        let now = Consent::new(approvals.clone(), refuse.clone(), Duration::ZERO);
        assert!(now.ask("https://spam.example", Lang::Fr).is_err());
        assert!(now.ask("https://spam.example", Lang::Fr).is_err());
        assert_eq!(
            refuse.asked.load(std::sync::atomic::Ordering::Relaxed),
            3,
            "no quiet period: asked each time"
        );
        let always = Arc::new(Counting { answer: Decision::Always, asked: Default::default() });
        let gate = Consent::new(approvals.clone(), always.clone(), Duration::from_secs(60));
        gate.ask("https://ok.example", Lang::Fr).unwrap();
        gate.ask("https://ok.example", Lang::Fr).unwrap();
        assert_eq!(
            always.asked.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "allowed for good: asked once"
        );
        assert!(approvals.contains("https://ok.example"));
    }

    #[test]
    fn without_user_sites_there_is_no_gate_and_approvals_are_not_read() {
        let (dir, store) = fresh();
        Approvals::open(&dir, &store).unwrap().add("https://approved.example").unwrap();
        let prompt: Arc<dyn ConsentPrompt> =
            Arc::new(Counting { answer: Decision::Always, asked: Default::default() });
        let mut config = crate::platform::config::Config::default();
        let gate = Consent::for_config(&config, &dir, &store, Some(prompt.clone())).unwrap();
        assert!(
            gate.is_some_and(|g| g.approvals.contains("https://approved.example")),
            "allowed: the approvals count"
        );
        config.allow_user_sites = false;
        assert!(
            Consent::for_config(&config, &dir, &store, Some(prompt.clone())).unwrap().is_none(),
            "off: no dialog, no approval"
        );
        assert!(
            Consent::for_config(&crate::platform::config::Config::default(), &dir, &store, None)
                .unwrap()
                .is_none(),
            "no prompt: no gate"
        );
        // Off by a policy file, whatever the user's file says.
        let (user, policy) = (dir.join("user.toml"), dir.join("policy.toml"));
        std::fs::write(&user, "allow_user_sites = true\n").unwrap();
        std::fs::write(&policy, "allow_user_sites = false\n").unwrap();
        let (config, _) = crate::platform::config::Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert!(Consent::for_config(&config, &dir, &store, Some(prompt)).unwrap().is_none());
    }
}
