//! A catalogue text said with its values: `{name}` placeholders filled ([`fill`]), in either language when
//! rendered ([`Said`]), and the labelled field (« Titulaire : … »). A leaf the prompts, the checks and the
//! renderers share.
#![forbid(unsafe_code)]

use crate::messages::{Lang, Text};

/// Replaces `{name}` placeholders of a catalogue text.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v))
}

/// A catalogue text and the values of its placeholders, said in either language when rendered.
#[derive(Debug, Clone)]
pub struct Said {
    /// The catalogue text, with `{name}` placeholders.
    pub text: Text,
    /// Each placeholder's value.
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
    /// `text`, with no value yet.
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

    /// Said in `lang`, every placeholder filled.
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
pub(crate) fn field_str(lang: Lang, name: &str, value: &str) -> String {
    fill(crate::messages::prompt::FIELD.get(lang), &[("label", name), ("value", value)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{detail, label};

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
