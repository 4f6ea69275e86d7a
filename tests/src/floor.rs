//! The card's physical floor of each login path: the fewest commands the card must see for it, and the
//! time the latency model (docs/benchmarks.md) gives them, so that `cpx-bench --real` can print ours as a
//! ratio of it. Each floor is played on a virtual card of the persona in this process (no PC/SC): every
//! command must succeed there, and the bytes it takes on the wire are the card's own answers.
//!
//! The paths (their APDU lists are in docs/benchmarks.md, « The floor »):
//! - **card known**: what one login needs of a card whose certificate is known: the tries left (GET DATA
//!   on the code porteur's data object, its GET RESPONSE), VERIFY, MSE SET AT, INTERNAL AUTHENTICATE and
//!   its GET RESPONSE (the signature);
//! - **first login after insertion**: the same plus reading the authentication certificate once
//!   (SELECT by path from the MF, no FCP asked, then READ BINARY of its bytes);
//! - **insertion → identity known**: reading the certificate once (a card never seen), or, for a card
//!   seen before, its number (READ BINARY of EF.SN.ICC by its short file identifier).

use std::time::Duration;

use cpx_sim::card::Reaction;
use cpx_sim::{CardOs, Latency, Options};

/// One command of a floor, as played on the virtual card.
pub struct FloorApdu {
    /// What it is (« VERIFY »).
    pub name: &'static str,
    /// The command as sent (a code porteur's bytes are in it: never printed).
    pub command: Vec<u8>,
    /// The answer's length, status word included.
    pub answer_len: usize,
    /// What the latency model gives it.
    pub time: Duration,
}

/// The floor of one path.
pub struct Floor {
    /// The path (« card known »).
    pub path: &'static str,
    /// Its commands, in order.
    pub apdus: Vec<FloorApdu>,
}

impl Floor {
    /// The time of all its commands.
    pub fn time(&self) -> Duration {
        self.apdus.iter().map(|a| a.time).sum()
    }

    /// The commands by name with their sizes, for the report (`VERIFY 13→2 B`).
    pub fn listing(&self) -> String {
        self.apdus
            .iter()
            .map(|a| format!("{} ({}→{} B)", a.name, a.command.len(), a.answer_len))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Plays commands on one virtual card and charges each what the latency model says.
struct Player {
    card: CardOs,
    latency: Latency,
    apdus: Vec<FloorApdu>,
}

impl Player {
    fn send(&mut self, name: &'static str, command: Vec<u8>) -> Result<Vec<u8>, String> {
        let rsa_before = self.card.rsa_ops;
        let answer = match self.card.process(&command) {
            Reaction::Answer(a) => a,
            other => return Err(format!("{name}: the virtual card gave {other:?}")),
        };
        let sw =
            answer.len().checked_sub(2).map(|i| &answer[i..]).ok_or(format!("{name}: no status word"))?;
        if sw != [0x90, 0x00] && sw[0] != 0x61 {
            return Err(format!("{name}: status {}", hex::encode_upper(sw)));
        }
        let time = self.latency.delay(
            &self.card.spec.atr,
            command.len(),
            answer.len(),
            self.card.rsa_ops.saturating_sub(rsa_before),
        );
        self.apdus.push(FloorApdu { name, answer_len: answer.len(), command, time });
        Ok(answer)
    }

    /// A case-4 command the T=0 way: the command, then GET RESPONSE for what `61xx` announced.
    fn send_t0(&mut self, name: &'static str, command: Vec<u8>) -> Result<(), String> {
        let answer = self.send(name, command)?;
        if let [.., 0x61, n] = answer[..] {
            self.send("GET RESPONSE", vec![0x00, 0xC0, 0x00, 0x00, n])?;
        }
        Ok(())
    }

    /// Tries left, VERIFY, MSE SET AT, INTERNAL AUTHENTICATE of a SHA-256 DigestInfo.
    fn login(&mut self) -> Result<(), String> {
        let pin = self.card.spec.pin.as_ref().ok_or("the card has no code porteur")?;
        let (reference, value) = (pin.reference, pin.value.clone());
        let key = self
            .card
            .spec
            .keys
            .iter()
            .find(|k| k.internal_auth && k.needs_pin)
            .ok_or("the card has no authentication key")?
            .reference;
        let header = [0x4D, 0x08, 0x70, 0x06, 0xBF, 0x81, reference, 0x02, 0xA0, 0x80];
        self.send_t0("GET DATA (tries)", [&[0x00, 0xCB, 0x3F, 0xFF, 0x0A][..], &header].concat())?;
        self.send("VERIFY", [&[0x00, 0x20, 0x00, reference, value.len() as u8][..], &value].concat())?;
        self.send("MSE SET AT", vec![0x00, 0x22, 0x41, 0xA4, 0x06, 0x80, 0x01, 0x02, 0x84, 0x01, key])?;
        let digest_info = [
            &[
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
                0x05, 0x00, 0x04, 0x20,
            ][..],
            &[0x5A; 32],
        ]
        .concat();
        self.send_t0(
            "INTERNAL AUTHENTICATE",
            [&[0x00, 0x88, 0x00, 0x00, digest_info.len() as u8][..], &digest_info].concat(),
        )
    }

    /// The authentication certificate: SELECT by path from the MF (no FCP), READ BINARY of its bytes.
    fn read_certificate(&mut self) -> Result<(), String> {
        let (path, len) = certificate_file(&self.card)?;
        self.send(
            "SELECT certificate (path)",
            [&[0x00, 0xA4, 0x08, 0x0C, path.len() as u8][..], &path].concat(),
        )?;
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(0xE7);
            let at = (offset as u16).to_be_bytes();
            self.send("READ BINARY", vec![0x00, 0xB0, at[0], at[1], n as u8])?;
            offset += n;
        }
        Ok(())
    }
}

/// The path from the MF (without 3F00) and the size of the file holding the authentication key's
/// certificate: the EF whose certificate carries that key's public key.
fn certificate_file(card: &CardOs) -> Result<(Vec<u8>, usize), String> {
    use rsa::traits::PublicKeyParts;
    use x509_parser::prelude::FromDer;
    let key =
        card.spec.keys.iter().find(|k| k.internal_auth && k.needs_pin).ok_or("no authentication key")?;
    let modulus = key.key.n().to_bytes_be();
    let strip = |b: &[u8]| b.iter().position(|x| *x != 0).map_or(Vec::new(), |i| b[i..].to_vec());
    let fs = &card.spec.fs;
    let found = fs.nodes.iter().enumerate().find_map(|(i, node)| match &node.body {
        cpx_sim::fs::Body::Ef { content, .. } => {
            let (_, cert) = x509_parser::certificate::X509Certificate::from_der(content).ok()?;
            let spki = cert.public_key().parsed().ok()?;
            match spki {
                x509_parser::public_key::PublicKey::RSA(rsa) if strip(rsa.modulus) == strip(&modulus) => {
                    Some((i, content.len()))
                }
                _ => None,
            }
        }
        cpx_sim::fs::Body::Df { .. } => None,
    });
    let (mut node, len) = found.ok_or("no file holds the authentication certificate")?;
    let mut fids = Vec::new();
    while let Some(parent) = fs.nodes[node].parent {
        fids.push(fs.nodes[node].fid);
        node = parent;
    }
    Ok((fids.iter().rev().flat_map(|f| f.to_be_bytes()).collect(), len))
}

/// The floors of every path for `persona` under `latency`: card known, first login after insertion,
/// first login after the background read (the card-known commands), insertion → identity known (a card never seen), insertion → identity known (a card seen before).
pub fn floors(persona: &str, latency: Latency) -> Result<Vec<Floor>, String> {
    let spec = cpx_sim::find(persona).ok_or_else(|| format!("no persona {persona}"))?;
    let play = |path: &'static str, steps: &dyn Fn(&mut Player) -> Result<(), String>| {
        let mut player = Player { card: spec.card(&Options::default()), latency, apdus: Vec::new() };
        steps(&mut player).map_err(|e| format!("{path}: {e}"))?;
        Ok::<_, String>(Floor { path, apdus: player.apdus })
    };
    Ok(vec![
        play("card known", &|p| p.login())?,
        play("first login after insertion", &|p| {
            p.login()?;
            p.read_certificate()
        })?,
        // The certificate was read on insertion, before the click: the login is the card-known one.
        play("first login after the background read", &|p| p.login())?,
        play("insertion → identity known, card never seen", &|p| p.read_certificate())?,
        play("insertion → identity known, card seen before", &|p| {
            p.send("READ BINARY EF.SN.ICC (SFI)", vec![0x00, 0xB0, 0x9C, 0x00, 0x0C]).map(|_| ())
        })?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cps3_floors_play_on_the_virtual_card_and_take_the_modelled_time() {
        let floors = floors("cps3", Latency::REAL).unwrap();
        let known = &floors[0];
        let names: Vec<_> = known.apdus.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "GET DATA (tries)",
                "GET RESPONSE",
                "VERIFY",
                "MSE SET AT",
                "INTERNAL AUTHENTICATE",
                "GET RESPONSE"
            ]
        );
        // Six exchanges at 90 ms, one RSA operation at 250 ms, and the bytes at 9600 bit/s.
        let bytes: usize = known.apdus.iter().map(|a| a.command.len() + a.answer_len).sum();
        let expected = Duration::from_millis(6 * 90 + 250) + Duration::from_micros(bytes as u64 * 1250);
        let slack = Duration::from_micros(known.apdus.len() as u64);
        assert!(known.time().abs_diff(expected) <= slack, "{:?} vs {expected:?}", known.time());
        // The first login reads the whole certificate once more; the signature came back whole.
        assert!(floors[1].apdus.len() > known.apdus.len() + 1);
        assert_eq!(known.apdus[5].answer_len, 256 + 2);
        assert_eq!(floors[4].apdus.len(), 1);
        assert!(Floor::time(&floors[3]) < floors[1].time());
        // After the background read, the first login is the card-known one.
        assert_eq!(floors[2].apdus.len(), known.apdus.len());
        assert_eq!(super::floors("cps3", Latency::OFF).unwrap()[0].time(), Duration::ZERO);
    }
}
