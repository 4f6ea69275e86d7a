//! Rendering, in one place, of what the agent says: the terminal conventions (colour only on a terminal
//! and never when `NO_COLOR` is set, no-color.org), catalogue texts filled with their values ([`Said`]),
//! and the reader reports, problems and checks as text or JSON, for the CLI, `serve`'s status and the tray
//! app's windows alike.

use std::io::IsTerminal;

use cpx_card::identity::date;
use cpx_card::{Recognition, Validity};
use serde_json::{json, Value};

use crate::card::scan::{card_label, national_id_label, CardSummary, ReaderReport};
use crate::helpdesk::diagnose::{Check, Verdict};
use crate::messages::{label, Code, Lang, SlotState, Text};

#[derive(Clone, Copy)]
pub enum Tone {
    Good,
    Warn,
    Bad,
}

/// Whether stdout gets ANSI colours.
pub fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

pub fn paint(text: &str, tone: Tone, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Warn => "33",
        Tone::Bad => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Replaces `{name}` placeholders of a catalogue text.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v))
}

/// A catalogue text and the values of its placeholders, said in either language when rendered.
#[derive(Debug, Clone)]
pub struct Said {
    pub text: Text,
    pub args: Vec<(&'static str, Arg)>,
}

/// The value of one placeholder.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A technical value (a path, an ATR, the system's own error text): the same in every language.
    Plain(String),
    /// A word of the catalogue.
    Word(Text),
    /// Several catalogue texts, joined with « ; » (« ; » in French).
    List(Vec<Said>),
}

impl Said {
    pub fn new(text: Text) -> Self {
        Self { text, args: Vec::new() }
    }

    /// Sets `{name}` to a technical value.
    pub fn with(mut self, name: &'static str, value: impl std::fmt::Display) -> Self {
        self.args.push((name, Arg::Plain(value.to_string())));
        self
    }

    /// Sets `{name}` to a word of the catalogue.
    pub fn word(mut self, name: &'static str, word: Text) -> Self {
        self.args.push((name, Arg::Word(word)));
        self
    }

    /// Sets `{name}` to a list of catalogue texts.
    pub fn list(mut self, name: &'static str, items: Vec<Said>) -> Self {
        self.args.push((name, Arg::List(items)));
        self
    }

    pub fn get(&self, lang: Lang) -> String {
        let values: Vec<(&str, String)> = self
            .args
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Arg::Plain(s) => s.clone(),
                    Arg::Word(t) => t.get(lang).to_owned(),
                    Arg::List(items) => {
                        let sep = match lang {
                            Lang::Fr => " ; ",
                            Lang::En => "; ",
                        };
                        items.iter().map(|i| i.get(lang)).collect::<Vec<_>>().join(sep)
                    }
                };
                (*k, v)
            })
            .collect();
        let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        fill(self.text.get(lang), &values)
    }

    /// Every catalogue text this is made of (itself, its words, its list's items).
    pub fn texts(&self) -> Vec<Text> {
        let mut out = vec![self.text];
        for (_, a) in &self.args {
            match a {
                Arg::Plain(_) => {}
                Arg::Word(t) => out.push(*t),
                Arg::List(items) => out.extend(items.iter().flat_map(Said::texts)),
            }
        }
        out
    }
}

/// « Titulaire : JEAN DUPONT » / « Holder: JEAN DUPONT ».
pub fn field(lang: Lang, name: Text, value: &str) -> String {
    fill(crate::messages::prompt::FIELD.get(lang), &[("label", name.get(lang)), ("value", value)])
}

/// [`field`] with a name already said.
fn field_str(lang: Lang, name: &str, value: &str) -> String {
    fill(crate::messages::prompt::FIELD.get(lang), &[("label", name), ("value", value)])
}

/// A code of the catalogue as JSON: its name, message and fix in `lang`, whether retrying can help.
pub fn problem_json(lang: Lang, code: Code) -> Value {
    crate::loopback::api::Problem::new(code, lang).to_value()
}

/// A code of the catalogue as text: its message (in red), then « Que faire : … ».
pub fn problem_text(lang: Lang, code: Code, colour: bool) -> String {
    let e = code.entry();
    format!(
        "{}\n  {} : {}",
        paint(e.message.get(lang), Tone::Bad, colour),
        label::WHAT_TO_DO.get(lang),
        e.fix.get(lang)
    )
}

/// One line of `cpx-agent errors`: « CODE — message », then what to do.
pub fn catalogue_entry_text(lang: Lang, code: Code) -> String {
    let e = code.entry();
    format!(
        "{} — {}\n  {} : {}",
        code.as_str(),
        e.message.get(lang),
        label::WHAT_TO_DO.get(lang),
        e.fix.get(lang)
    )
}

/// « valide du … au … », « expiré depuis le … » or « valide seulement à partir du … ».
pub fn certificate_text(lang: Lang, card: &CardSummary) -> String {
    let id = &card.identity;
    let (from, to) = (date(id.not_before), date(id.not_after));
    let template = match card.certificate_validity {
        Validity::Valid => label::VALID_FROM_TO,
        Validity::Expired => label::EXPIRED_ON,
        Validity::NotYetValid => label::NOT_YET_VALID,
    };
    fill(template.get(lang), &[("from", &from), ("to", &to)])
}

/// « 2 essai(s) restant(s) sur 3 ».
pub fn tries_text(lang: Lang, tries_left: u8, max_tries: u8) -> String {
    fill(label::TRIES_LEFT.get(lang), &[("n", &tries_left.to_string()), ("max", &max_tries.to_string())])
}

/// A reader's report as the CLI's JSON (`status`, `card`, `watch`): the report, its message and problems.
pub fn report_json(lang: Lang, r: &ReaderReport) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["message"] = r.message().get(lang).into();
    v["problems"] = r.codes.iter().map(|c| problem_json(lang, *c)).collect();
    v
}

/// A reader as the tray's status window shows it: its message, the card, holder, certificate and tries.
pub fn reader_view(lang: Lang, r: &ReaderReport) -> Value {
    let mut v = json!({
        "reader": r.reader,
        "message": r.message().get(lang),
        "generation": r.generation,
        "card_present": r.state != SlotState::NoCard,
        "problems": r.codes.iter().map(|c| problem_json(lang, *c)).collect::<Vec<_>>(),
    });
    if let Some(card) = &r.card {
        v["card_type"] = card_label(card).into();
        v["holder"] = card.identity.display_name().into();
        v["certificate"] = certificate_text(lang, card).into();
        if let Some(p) = card.pin {
            v["tries_left"] = p.tries_left.into();
            v["max_tries"] = p.max_tries.into();
        }
    }
    v
}

/// A reader as `GET /v1/status` gives it to the pages (docs/openapi.yaml): its state and message, what
/// stops a ready card from logging in, the card type and holder.
pub fn reader_api_json(lang: Lang, r: &ReaderReport) -> Value {
    let mut v = json!({"reader": r.reader, "state": r.state, "message": r.message().get(lang), "codes": r.codes, "generation": r.generation});
    // What stops this card from logging in, in words (code porteur blocked, expired…).
    if let Some(code) = r.codes.first().filter(|_| r.state == SlotState::CardReady) {
        v["problem"] = code.entry().message.get(lang).into();
    }
    if let Some(card) = &r.card {
        v["card_type"] = card_label(card).into();
        let id = &card.identity;
        v["holder"] = json!({"nom": id.nom, "prenom": id.prenom, "profession": id.profession, "national_id": id.national_id});
    }
    v
}

/// A reader's report as the CLI's text: the reader's line, with `detailed` the card's fields, then each
/// problem and what to do.
pub fn report_text(lang: Lang, r: &ReaderReport, detailed: bool, colour: bool) -> String {
    let mut out = Vec::new();
    let tone = match r.state {
        SlotState::CardReady if r.codes.is_empty() => Tone::Good,
        SlotState::NoCard | SlotState::CardReady => Tone::Warn,
        _ => Tone::Bad,
    };
    let mut line = format!(
        "{} « {} » : {}",
        label::READER.get(lang),
        r.reader,
        paint(r.message().get(lang), tone, colour)
    );
    if let Some(card) = &r.card {
        line.push_str(&format!(" — {}, {}", card_label(card), card.identity.display_name()));
    }
    out.push(line);
    if let (true, Some(card)) = (detailed, &r.card) {
        let id = &card.identity;
        let mut kind = card_label(card);
        if card.recognition == Recognition::IssuerOnly {
            kind = format!("{kind}, {}", fill(label::UNKNOWN_VARIANT.get(lang), &[("atr", &r.atr)]));
        }
        out.push(format!("  {} : {kind}", label::CARD_TYPE.get(lang)));
        out.push(format!("  {} : {}", label::SERIAL.get(lang), card.serial));
        out.push(format!("  {} : {}", label::HOLDER.get(lang), id.display_name()));
        out.push(format!("  {} : {}", label::NATIONAL_ID.get(lang), national_id_label(id)));
        if let Some(p) = &id.profession {
            out.push(format!("  {} : {p}", label::PROFESSION.get(lang)));
        }
        let validity = certificate_text(lang, card);
        let validity = match card.certificate_validity {
            Validity::Valid => validity,
            Validity::Expired | Validity::NotYetValid => paint(&validity, Tone::Bad, colour),
        };
        let test = if id.test_pki { format!(", {}", label::TEST_PKI.get(lang)) } else { String::new() };
        out.push(format!("  {} : {validity} ({}{test})", label::CERTIFICATE.get(lang), id.issuer));
        let pin = match card.pin {
            None => label::NO_PIN.get(lang).to_owned(),
            Some(p) if p.blocked() => paint(label::BLOCKED.get(lang), Tone::Bad, colour),
            Some(p) => tries_text(lang, p.tries_left, p.max_tries),
        };
        out.push(format!("  {} : {pin}", label::PIN.get(lang)));
    }
    for (i, code) in r.codes.iter().enumerate() {
        let e = code.entry();
        if r.state == SlotState::CardReady {
            out.push(format!("  {}", paint(e.message.get(lang), Tone::Bad, colour)));
        } else if r.state == SlotState::CardRecognisedUnusable && i == 0 {
            // Already the reader's line.
        } else if r.codes.len() > 1 || *code != Code::NoCard {
            out.push(format!("  {}", e.message.get(lang)));
        }
        out.push(format!("  {} : {}", label::WHAT_TO_DO.get(lang), e.fix.get(lang)));
    }
    out.join("\n")
}

/// A check of `diagnose` as JSON (the CLI's `--json` and the tray's diagnostics window): its id, verdict,
/// code, title and detail in `lang`, and the problem with its fix when it is not fine.
pub fn check_json(lang: Lang, c: &Check) -> Value {
    let mut v = json!({
        "check": c.id,
        "verdict": c.verdict,
        "code": c.code,
        "title": c.id.kind.title().get(lang),
        "detail": c.detail.get(lang),
    });
    if let Some(code) = c.code {
        v["problem"] = problem_json(lang, code);
    }
    v
}

/// A check of `diagnose` as text: « OK  Titre « lecteur » : détail », then the problem and what to do.
pub fn check_text(lang: Lang, c: &Check, colour: bool) -> String {
    let (mark, tone) = match c.verdict {
        Verdict::Ok => ("OK ", Tone::Good),
        Verdict::Warn => ("!! ", Tone::Warn),
        Verdict::Fail => ("KO ", Tone::Bad),
    };
    let place = c.id.about.as_deref().map(|r| format!(" « {r} »")).unwrap_or_default();
    let title = format!("{}{place}", c.id.kind.title().get(lang));
    let mut out = format!("{} {}", paint(mark, tone, colour), field_str(lang, &title, &c.detail.get(lang)));
    if let Some(code) = c.code {
        let e = code.entry();
        out.push_str(&format!("\n    [{}] {}", code.as_str(), e.message.get(lang)));
        out.push_str(&format!("\n    {}", field(lang, label::WHAT_TO_DO, e.fix.get(lang))));
    }
    out
}

/// `autostart status`: the per-user entry and the installer's, each with where it lives.
pub fn autostart_text(lang: Lang, status: &crate::platform::autostart::Status) -> String {
    let user = if status.user_entry.is_some() { label::AUTOSTART_USER_ON } else { label::AUTOSTART_USER_OFF };
    let machine = if status.machine { label::AUTOSTART_MACHINE_ON } else { label::AUTOSTART_MACHINE_OFF };
    format!("{} ({})\n{} ({})", user.get(lang), status.user_place, machine.get(lang), status.machine_place)
}

/// `browser-policies apply|remove`: one line per change, then the warnings (each line ends with `\n`).
pub fn browser_policies_text(
    lang: Lang,
    nothing_wanted: bool,
    outcome: &crate::platform::browser_policies::Outcome,
    colour: bool,
) -> String {
    use crate::platform::browser_policies::Action;
    let mut out = String::new();
    if nothing_wanted {
        out.push_str(&format!("{}\n", label::BP_NOTHING_WANTED.get(lang)));
    }
    for c in &outcome.changes {
        let what = match c.action {
            Action::Written => label::BP_WRITTEN,
            Action::Removed => label::BP_REMOVED,
        };
        let entries =
            if c.entries.is_empty() { String::new() } else { format!(" ({})", c.entries.join(", ")) };
        out.push_str(&format!("{} : {} {}{entries}\n", c.browser, what.get(lang), c.place));
    }
    if outcome.changes.is_empty() {
        out.push_str(&format!("{}\n", label::BP_NOTHING_DONE.get(lang)));
    }
    for w in &outcome.warnings {
        out.push_str(&format!("{} {w}\n", paint("!!", Tone::Warn, colour)));
    }
    out
}

/// `install-trust` / `uninstall-trust`: what was done, one line each (each ends with `\n`).
pub fn machine_trust_text(
    lang: Lang,
    command: &str,
    install: bool,
    dir: &std::path::Path,
    done: &crate::platform::machine_trust::Done,
) -> String {
    use crate::messages::trust;
    let dir = dir.display().to_string();
    let mut out = if install {
        let kept = if done.created { trust::NEW_CA } else { trust::CA_KEPT };
        format!("cpx-agent {command}: {dir} ({})\n", kept.get(lang))
    } else {
        format!("cpx-agent {command}: {}\n", fill(trust::REMOVED.get(lang), &[("dir", &dir)]))
    };
    for store in &done.stores {
        let text = if install { trust::TRUSTED_IN } else { trust::REMOVED_FROM };
        out.push_str(&format!("cpx-agent {command}: {}\n", fill(text.get(lang), &[("store", store)])));
    }
    out
}

/// A monitor event of `watch`: the reader it is about, if any, and what happened.
pub fn event_text(lang: Lang, event: &cpx_pcsc::MonitorEvent, colour: bool) -> (Option<&str>, String) {
    use cpx_pcsc::MonitorEvent as E;
    match event {
        E::ServiceStarted => (None, label::SERVICE_STARTED.get(lang).to_owned()),
        E::ServiceStopped => (None, paint(label::SERVICE_STOPPED.get(lang), Tone::Bad, colour)),
        E::ReaderAdded { reader } => (Some(reader), label::READER_ADDED.get(lang).to_owned()),
        E::ReaderRemoved { reader } => (Some(reader), label::READER_REMOVED.get(lang).to_owned()),
        E::CardRemoved { reader } => (Some(reader), label::REMOVED.get(lang).to_owned()),
        E::CardMute { reader } => (Some(reader), paint(label::MUTE.get(lang), Tone::Bad, colour)),
        E::CardInserted { reader, atr } => {
            (Some(reader), format!("{} (ATR {})", label::INSERTED.get(lang), hex::encode_upper(atr)))
        }
    }
}

/// A `watch --json` line: the event, its time and message; for an inserted card, its report and how long
/// after pcscd's event it was ready.
pub fn event_json(
    lang: Lang,
    event: &cpx_pcsc::MonitorEvent,
    stamp: &str,
    report: Option<(&ReaderReport, std::time::Duration)>,
) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or_default();
    v["time"] = stamp.into();
    v["message"] = event_text(lang, event, false).1.into();
    if let Some((r, ready)) = report {
        v["card"] = report_json(lang, r);
        v["ready_ms"] = json!(ready.as_secs_f64() * 1000.0);
    }
    v
}

/// The `watch` lines of one event: « [time] Lecteur « … » : carte insérée (ATR …) », then for an inserted
/// card its report and « prête en … ms ».
pub fn event_lines(
    lang: Lang,
    event: &cpx_pcsc::MonitorEvent,
    stamp: &str,
    report: Option<(&ReaderReport, std::time::Duration)>,
    colour: bool,
) -> String {
    let (reader, what) = event_text(lang, event, colour);
    let place = reader.map(|r| format!("{} « {r} » : ", label::READER.get(lang))).unwrap_or_default();
    let mut out = format!("[{stamp}] {place}{what}");
    if let Some((r, ready)) = report {
        let ms = format!("{:.1}", ready.as_secs_f64() * 1000.0);
        out.push_str(&format!("\n[{stamp}]   {}", report_text(lang, r, false, colour)));
        if r.state == SlotState::CardReady {
            out.push_str(&format!("\n[{stamp}]   {}", fill(label::READY_IN.get(lang), &[("ms", &ms)])));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::detail;

    #[test]
    fn said_fills_words_and_lists_in_the_language() {
        let said = Said::new(detail::USER_STORES).with("path", "/tmp/ca.pem").list(
            "stores",
            vec![
                Said::new(detail::STORE_TRUSTED).with("store", "NSS"),
                Said::new(detail::STORE_NOT_TRUSTED).with("store", "Firefox"),
            ],
        );
        assert_eq!(said.get(Lang::En), "user identity /tmp/ca.pem: NSS: trusted; Firefox: NOT trusted");
        assert_eq!(
            said.get(Lang::Fr),
            "identité de l'utilisateur /tmp/ca.pem : NSS : approuvé ; Firefox : NON approuvé"
        );
        assert_eq!(said.texts().len(), 3);
        let config = Said::new(detail::CONFIGURATION).word("pki", detail::PKI_TEST).with("port", 1);
        assert!(config.get(Lang::Fr).contains("IGC-Santé de test"), "{}", config.get(Lang::Fr));
        assert_eq!(field(Lang::Fr, label::HOLDER, "X"), "Titulaire : X");
        assert_eq!(field(Lang::En, label::HOLDER, "X"), "Holder: X");
    }
}
