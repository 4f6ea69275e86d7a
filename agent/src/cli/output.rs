//! Rendering, in one place, of what the agent says: the terminal conventions (colour only on a terminal
//! and never when `NO_COLOR` is set, no-color.org), and the reader reports, problems and checks as text or JSON, for the CLI, `serve`'s status and the tray
//! app's windows alike.

use std::io::IsTerminal;

use cpx_card::identity::date;
use cpx_card::{Recognition, Validity};
use serde_json::{json, Value};

use crate::card::scan::{card_label, national_id_label, structure_label, CardSummary, ReaderReport};
use crate::helpdesk::diagnose::{Check, Verdict};
use crate::messages::{label, Code, Lang, SlotState};
use crate::said::{field, field_str, fill};

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

/// « CPE (carte de personnel d'établissement, d'après la carte) sur CPS3 (contact) »: the card type, what
/// it is, where it was learnt, and the generation (`platform`).
pub fn card_type_text(lang: Lang, card: &CardSummary, platform: &str) -> String {
    let source = match card.card_type_source {
        cpx_card::TypeSource::Card => format!(", {}", label::TYPE_FROM_CARD.get(lang)),
        cpx_card::TypeSource::Certificate => format!(", {}", label::TYPE_FROM_CERTIFICATE.get(lang)),
        cpx_card::TypeSource::Unknown => String::new(),
    };
    format!(
        "{} ({}{source}) {} {platform}",
        card.card_type.code(),
        crate::messages::card_type_name(card.card_type).get(lang),
        label::ON_PLATFORM.get(lang)
    )
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
        v["card_type"] = format!("{} · {}", card.card_type.code(), card_label(card)).into();
        v["card_kind"] = json!(card.card_type);
        v["holder"] = card.identity.display_name().into();
        // The structure, without the name again when it is the holder's (a non-nominative card).
        let id = &card.identity;
        let number = id
            .structure
            .as_ref()
            .and_then(|s| Some(format!("{} {}", s.register.as_ref()?, s.number.as_ref()?)));
        let named_by_structure =
            id.structure.as_ref().and_then(|s| s.name.as_ref()) == Some(&id.display_name());
        v["structure"] = if named_by_structure { number.into() } else { structure_label(id).into() };
        v["certificate"] = certificate_text(lang, card).into();
        if let Some(p) = card.pin {
            v["tries_left"] = p.tries_left.into();
            v["max_tries"] = p.max_tries.into();
        }
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
        out.push(format!("  {} : {}", label::CARD_TYPE.get(lang), card_type_text(lang, card, &kind)));
        out.push(format!("  {} : {}", label::SERIAL.get(lang), card.serial));
        out.push(format!("  {} : {}", label::HOLDER.get(lang), id.display_name()));
        if let Some(structure) = structure_label(id) {
            out.push(format!("  {} : {structure}", label::STRUCTURE.get(lang)));
        }
        out.push(format!("  {} : {}", label::NATIONAL_ID.get(lang), national_id_label(lang, id)));
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
