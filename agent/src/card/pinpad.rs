//! Whether the code porteur is typed on the reader's keypad: the managed policy (`pinpad = "auto" |
//! "off"`), what the reader says of itself (PC/SC part 10 features), and the list, kept as data
//! (`agent/data/pinpad-quirks.txt`), of readers known to claim a PIN pad they do not have.

use cpx_pcsc::PinPadFeatures;
use serde::Serialize;

pub use crate::platform::config::PinPadPolicy;

/// The readers known to claim a PIN pad they do not have (parts of their PC/SC names).
const QUIRKS: &str = include_str!("../../data/pinpad-quirks.txt");

/// The quirk-list entry `reader` matches, if any.
pub fn quirk(reader: &str) -> Option<&'static str> {
    let name = reader.to_ascii_lowercase();
    QUIRKS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find(|entry| name.contains(&entry.to_ascii_lowercase()))
}

/// Whether, and why, the reader's keypad takes the code porteur.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "pinpad", rename_all = "snake_case")]
pub enum PinPadUse {
    /// The code porteur is typed on the reader's keypad (its `FEATURE_VERIFY_PIN_DIRECT` code).
    Used {
        /// The reader's verify command.
        control: u32,
    },
    /// The reader has no PIN pad (or none the agent can use: `_START`/`_FINISH` only).
    None,
    /// The reader has one, but the policy says `pinpad = "off"`.
    OffByPolicy,
    /// The reader claims one, but its model is known not to have one.
    QuirkListed {
        /// The quirk-list entry it matches.
        entry: &'static str,
    },
}

impl PinPadUse {
    /// Decides for one reader.
    pub fn decide(policy: PinPadPolicy, reader: &str, features: &PinPadFeatures) -> Self {
        let Some(control) = features.verify_direct else { return Self::None };
        if let Some(entry) = quirk(reader) {
            return Self::QuirkListed { entry };
        }
        match policy {
            PinPadPolicy::Off => Self::OffByPolicy,
            PinPadPolicy::Auto => Self::Used { control },
        }
    }

    /// The reader's verify command when its keypad takes the code porteur.
    pub fn control(&self) -> Option<u32> {
        match self {
            Self::Used { control } => Some(*control),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_pad() -> PinPadFeatures {
        PinPadFeatures { verify_direct: Some(0x4233_0006), ..PinPadFeatures::default() }
    }

    #[test]
    fn the_policy_value_is_auto_or_off() {
        let parse = |v: &str| {
            toml::from_str::<toml::Table>(&format!("k = \"{v}\""))
                .ok()
                .and_then(|t| t["k"].clone().try_into::<PinPadPolicy>().ok())
        };
        assert_eq!(parse("auto"), Some(PinPadPolicy::Auto));
        assert_eq!(parse("off"), Some(PinPadPolicy::Off));
        assert_eq!(parse("on"), None);
        assert_eq!(PinPadPolicy::default(), PinPadPolicy::Auto);
    }

    #[test]
    fn the_quirk_list_names_the_omnikey_models_whatever_the_case() {
        assert_eq!(quirk("HID Global OMNIKEY 3x21 Smart Card Reader 00 00"), Some("OMNIKEY 3x21"));
        assert_eq!(quirk("hid global omnikey 6121 smart card reader [x] 01 00"), Some("OMNIKEY 6121"));
        assert_eq!(quirk("OMNIKEY CardMan 3121 00 00"), Some("OMNIKEY CardMan 3121"));
        assert_eq!(quirk("HID Global OMNIKEY 5422 Smartcard Reader 00 00"), None);
        assert_eq!(quirk("Cherry GmbH SmartTerminal ST-2xxx 00 00"), None);
    }

    #[test]
    fn a_pin_pad_is_used_only_when_offered_not_quirk_listed_and_allowed() {
        let pad = with_pad();
        assert_eq!(
            PinPadUse::decide(PinPadPolicy::Auto, "Cherry ST-2xxx 00 00", &pad),
            PinPadUse::Used { control: 0x4233_0006 }
        );
        assert_eq!(
            PinPadUse::decide(PinPadPolicy::Off, "Cherry ST-2xxx 00 00", &pad),
            PinPadUse::OffByPolicy
        );
        assert_eq!(
            PinPadUse::decide(PinPadPolicy::Auto, "HID Global OMNIKEY 3x21 Smart Card Reader 00 00", &pad),
            PinPadUse::QuirkListed { entry: "OMNIKEY 3x21" }
        );
        assert_eq!(
            PinPadUse::decide(PinPadPolicy::Auto, "Cherry", &PinPadFeatures::default()),
            PinPadUse::None
        );
        assert_eq!(PinPadUse::decide(PinPadPolicy::Auto, "Cherry", &pad).control(), Some(0x4233_0006));
        assert_eq!(PinPadUse::decide(PinPadPolicy::Off, "Cherry", &pad).control(), None);
    }
}
