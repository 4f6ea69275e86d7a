//! ATR recognition (the table of docs/card-facts.md#recognition, kept as data with masks) and an ATR
//! parser for diagnostics (an unknown ATR is printed with its parsed form).

use serde::{Deserialize, Serialize};

/// The card generation, which decides the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Generation {
    /// CPS3: IAS-ECC, T=0, INTERNAL AUTHENTICATE, PKCS#1 v1.5 only.
    Cps3,
    /// CPS4: NXP ChipDoc on logical channel 1, PKCS#1 v1.5 and RSA-PSS.
    Cps4,
}

impl Generation {
    /// The generation's name as people and the page say it: "CPS3", "CPS4".
    pub fn name(self) -> &'static str {
        match self {
            Generation::Cps3 => "CPS3",
            Generation::Cps4 => "CPS4",
        }
    }
}

/// How the card is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    /// Read through the contacts: the code porteur and the signature are available.
    Contact,
    /// Read without contact (CPS3 NFC): identity only, no code porteur, no signature.
    Contactless,
}

/// One known CPx ATR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AtrEntry {
    /// How people name the card (« CPS3 », « CPS3 (sans contact) », « CPS4 »).
    pub label: &'static str,
    /// The ATR pattern, hexadecimal.
    #[serde(skip)]
    pub pattern: &'static str,
    /// Which bits of the pattern must match, hexadecimal.
    #[serde(skip)]
    pub mask: &'static str,
    /// The card generation it names.
    pub generation: Generation,
    /// The interface it names.
    pub interface: Interface,
}

/// The known CPx ATRs (docs/card-facts.md#recognition). Masks: the OpenSC/Windows ones where they exist,
/// exact otherwise.
/// Exact entries come first: the CPS3 mask (OpenSC's) also matches the CPS4 T=0-only ATR.
pub const ATR_TABLE: &[AtrEntry] = &[
    AtrEntry {
        label: "CPS4",
        pattern: "3B9B188001001225006480040100009044",
        mask: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        generation: Generation::Cps4,
        interface: Interface::Contact,
    },
    AtrEntry {
        label: "CPS4 (release candidate)",
        pattern: "3B9B188001001225006480000401009044",
        mask: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        generation: Generation::Cps4,
        interface: Interface::Contact,
    },
    AtrEntry {
        label: "CPS4 (T=0 seulement)",
        pattern: "3BDC18FF00001225006480000401009000",
        mask: "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        generation: Generation::Cps4,
        interface: Interface::Contact,
    },
    AtrEntry {
        label: "CPS3 (contact)",
        pattern: "3BAC00402A001225006480000310009000",
        mask: "FF00000000FFFFFFFFFFFF000000FFFFFF",
        generation: Generation::Cps3,
        interface: Interface::Contact,
    },
    AtrEntry {
        label: "CPS3 (sans contact)",
        pattern: "3B8F80010031B86404B0ECC1739401808290000E",
        mask: "FFFFFFFFFFFFFFFF0000FFC0FFFFFFFFFFFFFFFF",
        generation: Generation::Cps3,
        interface: Interface::Contactless,
    },
];

fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..clean.len() / 2).filter_map(|i| u8::from_str_radix(&clean[2 * i..2 * i + 2], 16).ok()).collect()
}

impl AtrEntry {
    /// True when `atr` matches this entry under its mask.
    pub fn matches(&self, atr: &[u8]) -> bool {
        let (pattern, mask) = (unhex(self.pattern), unhex(self.mask));
        atr.len() == pattern.len()
            && atr.iter().zip(pattern.iter().zip(&mask)).all(|(a, (p, m))| a & m == p & m)
    }
}

/// The table entry matching `atr`, if any.
pub fn recognise(atr: &[u8]) -> Option<&'static AtrEntry> {
    ATR_TABLE.iter().find(|e| e.matches(atr))
}

/// The transmission protocol to connect to this card with, when the driver knows better than the
/// reader's default.
///
/// A CPS4 offers T=0 and T=1 in its ATR (TD1 names T=0, TD2 T=1); ANS had to force T=0 for it on Windows
/// (Cryptolib 5.2 release notes, issue #1718), and the "T=0 only" CPS4 and the CPS3 offer nothing else.
/// pcsc-lite and WinSCard negotiate T=1 when the caller allows both, so for a contact CPx card whose ATR
/// offers T=0 the driver asks for T=0: the protocol the card was qualified with, and its first offered
/// (the default protocol of ISO/IEC 7816-3). A contactless card (PC/SC pseudo-ATR) and an ATR in no table
/// are left to the reader (`None`).
pub fn protocol_for(atr: &[u8]) -> Option<cpx_pcsc::Protocol> {
    let entry = recognise(atr)?;
    if entry.interface != Interface::Contact {
        return None;
    }
    parse(atr).protocols.contains(&0).then_some(cpx_pcsc::Protocol::T0)
}

/// The ISO 7816-3 fields of an ATR, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedAtr {
    /// Convention byte (3B direct, 3F inverse).
    pub ts: u8,
    /// Protocols offered (T=0, T=1, …), from the TDi bytes; T=0 when none is named.
    pub protocols: Vec<u8>,
    /// The historical bytes, hex.
    pub historical: String,
    /// The check byte, present when a protocol other than T=0 is offered.
    pub tck: Option<u8>,
    /// True when the ATR is shorter than its own format byte says, or TCK is wrong.
    pub inconsistent: bool,
}

/// Parses an ATR; never panics, whatever the bytes.
pub fn parse(atr: &[u8]) -> ParsedAtr {
    let mut protocols = Vec::new();
    let mut inconsistent = false;
    let ts = atr.first().copied().unwrap_or(0);
    let Some(&t0) = atr.get(1) else {
        return ParsedAtr {
            ts,
            protocols: vec![0],
            historical: String::new(),
            tck: None,
            inconsistent: true,
        };
    };
    let k = (t0 & 0x0F) as usize;
    let mut y = t0 >> 4;
    let mut i = 2;
    loop {
        // TA, TB, TC present per bits 0..2 of Y; TD per bit 3.
        i += (y & 0x07).count_ones() as usize;
        if y & 0x08 == 0 {
            break;
        }
        let Some(&td) = atr.get(i) else {
            inconsistent = true;
            break;
        };
        i += 1;
        protocols.push(td & 0x0F);
        y = td >> 4;
    }
    if protocols.is_empty() {
        protocols.push(0);
    }
    let hist = atr.get(i..i + k).unwrap_or_else(|| {
        inconsistent = true;
        atr.get(i.min(atr.len())..).unwrap_or(&[])
    });
    let has_tck = protocols.iter().any(|p| *p != 0);
    let tck = if has_tck { atr.get(i + k).copied() } else { None };
    if has_tck {
        let xor = atr.get(1..).unwrap_or(&[]).iter().fold(0u8, |a, b| a ^ b);
        if tck.is_none() || xor != 0 {
            inconsistent = true;
        }
    }
    protocols.dedup();
    ParsedAtr { ts, protocols, historical: hex::encode_upper(hist), tck, inconsistent }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recognises_every_atr_of_the_table_and_the_masked_variant() {
        for e in ATR_TABLE {
            assert_eq!(recognise(&unhex(e.pattern)).map(|m| m.label), Some(e.label));
        }
        // PCSCT's "Sesam Vitale card CPS" differs in masked bytes 11-13: still a CPS3.
        let v = unhex("3BAC00402A001225006480820212009000");
        assert_eq!(recognise(&v).unwrap().generation, Generation::Cps3);
        assert!(recognise(&unhex("3BAC00402A001225009980000310009000")).is_none());
        assert!(recognise(&unhex("3B8F8001804F0CA000000306030001000000006A")).is_none());
    }

    #[test]
    fn a_contact_cpx_card_that_offers_t0_is_connected_with_t0() {
        for e in ATR_TABLE {
            let wanted = protocol_for(&unhex(e.pattern));
            match e.interface {
                Interface::Contact => assert_eq!(wanted, Some(cpx_pcsc::Protocol::T0), "{}", e.label),
                Interface::Contactless => assert_eq!(wanted, None, "{}", e.label),
            }
        }
        // The CPS4 offers both: T=0 is chosen.
        assert_eq!(parse(&unhex("3B9B188001001225006480040100009044")).protocols, vec![0, 1]);
        assert_eq!(protocol_for(&unhex("3B9B188001001225006480040100009044")), Some(cpx_pcsc::Protocol::T0));
        assert_eq!(protocol_for(&unhex("3B8F8001804F0CA000000306030001000000006A")), None);
    }

    #[test]
    fn parses_cps3_and_cps4() {
        let cps3 = parse(&unhex("3BAC00402A001225006480000310009000"));
        assert_eq!((cps3.protocols.clone(), cps3.inconsistent), (vec![0], false));
        assert_eq!(cps3.historical, "001225006480000310009000");
        let cps4 = parse(&unhex("3B9B188001001225006480040100009044"));
        assert_eq!(cps4.protocols, vec![0, 1]);
        assert!(!cps4.inconsistent, "{cps4:?}");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse(&bytes);
            let _ = recognise(&bytes);
        }
    }
}
