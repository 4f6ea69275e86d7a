//! The card operating system of the virtual CPx card: it answers APDUs the way docs/simulator.md says a
//! CPS3 (IAS-ECC, T=0) or a CPS4 (ChipDoc, applet on logical channel 1) does, with real RSA on its own keys.

use rand::rngs::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256};

use crate::fault::{Command, Fault, Garbler, Wedge};
use crate::fs::{Body, FileSystem, ReadAccess, MF};

/// Card generation: decides the command set (INTERNAL AUTHENTICATE, logical channels, MSE forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// CPS3: IAS-ECC, INTERNAL AUTHENTICATE, no logical channels.
    Cps3,
    /// CPS4: ChipDoc on logical channel 1, PSO only.
    Cps4,
}

/// A private key of the card.
pub struct CardKey {
    /// Key reference (the MSE's `84`/`83` value).
    pub reference: u8,
    /// The RSA private key.
    pub key: RsaPrivateKey,
    /// The key may serve INTERNAL AUTHENTICATE (CPS3 authentication and technical keys).
    pub internal_auth: bool,
    /// The key may sign with PSO COMPUTE DIGITAL SIGNATURE.
    pub cds: bool,
    /// The code porteur must be verified first.
    pub needs_pin: bool,
    /// The DF the key belongs to: it is usable only while that application is selected.
    pub app_df: usize,
}

/// A secret of the card and its counter: the code porteur, or the code de déblocage (unblocking code).
pub struct Pin {
    /// Reference of the secret (VERIFY's P2).
    pub reference: u8,
    /// Stored form: ASCII digits, padded with 0xFF to the stored length for the code porteur.
    pub value: Vec<u8>,
    /// Tries the counter is reset to after a good VERIFY.
    pub max_tries: u8,
    /// Tries left before the secret blocks.
    pub tries_left: u8,
}

impl Pin {
    /// Compares a presented value with the stored one: a right one resets the counter, a wrong one
    /// spends a try; a value of another length spends none (`67 00`), nor does a blocked secret (`69 83`).
    fn check(&mut self, presented: &[u8]) -> Sw {
        if self.tries_left == 0 {
            return 0x6983;
        }
        if presented.len() != self.value.len() {
            return 0x6700;
        }
        if presented == self.value.as_slice() {
            self.tries_left = self.max_tries;
            return OK;
        }
        self.tries_left -= 1;
        match self.tries_left {
            0 => 0x6983,
            n => 0x63C0 | n as Sw,
        }
    }
}

/// What the transport must do with the card's reaction to one APDU.
#[derive(Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Send this response APDU (data and status word).
    Answer(Vec<u8>),
    /// Say nothing, ever (a mute card).
    Silence,
    /// Leave the reader now.
    Pull,
}

#[derive(Default, Clone)]
struct SecurityEnv {
    /// (algorithm reference, key reference) per control reference template.
    at: Option<(u8, u8)>,
    dst: Option<(u8, u8)>,
    ht: Option<u8>,
    ct: Option<(u8, u8)>,
}

#[derive(Clone)]
struct Channel {
    current: usize,
    env: SecurityEnv,
    hash: Option<Vec<u8>>,
    chain: Vec<u8>,
}

impl Channel {
    fn new() -> Self {
        Self { current: MF, env: SecurityEnv::default(), hash: None, chain: Vec::new() }
    }
}

/// What a card is made of: everything [`CardOs::new`] needs (the personas build one each).
pub struct CardSpec {
    /// Card generation (command set).
    pub generation: Generation,
    /// The answer to reset.
    pub atr: Vec<u8>,
    /// Answer case-4 commands the T=0 way (`61xx`, then GET RESPONSE).
    pub t0: bool,
    /// Read through the contactless interface (no signature).
    pub contactless: bool,
    /// The files.
    pub fs: FileSystem,
    /// The private keys.
    pub keys: Vec<CardKey>,
    /// The code porteur, if the card has one.
    pub pin: Option<Pin>,
    /// The code de déblocage: VERIFY with it is what RESET RETRY COUNTER of the code porteur asks for
    /// first (its ACL: user authentication under SE#3).
    pub unblock: Option<Pin>,
    /// How the card misbehaves ([`Fault::None`] for a healthy card).
    pub fault: Fault,
}

/// The virtual card's operating system: its state (files, keys, code porteur, logical channels) and the
/// APDUs it answers.
pub struct CardOs {
    /// What the card is made of; a persona or a test may change it between commands.
    pub spec: CardSpec,
    /// Spoils a share of the answers, when set (`--garble`).
    pub garbler: Option<Garbler>,
    /// How long the card takes to answer (applied by the vpcd transport).
    pub latency: crate::latency::Latency,
    /// RSA private-key operations done so far (the latency model charges each one).
    pub rsa_ops: u32,
    /// State of a [`Fault::ChipDoc6985`] card.
    pub wedge: Option<Wedge>,
    channels: [Option<Channel>; 4],
    pin_verified: bool,
    unblock_verified: bool,
    pending: Vec<u8>,
}

type Sw = u16;
const OK: Sw = 0x9000;

fn sw(code: Sw) -> Vec<u8> {
    code.to_be_bytes().to_vec()
}

impl CardOs {
    /// A card as the spec describes it, just powered up; no garbling, no latency.
    pub fn new(spec: CardSpec) -> Self {
        let mut os = Self {
            wedge: spec.fault.initial_wedge(),
            spec,
            garbler: None,
            latency: crate::latency::Latency::OFF,
            rsa_ops: 0,
            channels: Default::default(),
            pin_verified: false,
            unblock_verified: false,
            pending: Vec::new(),
        };
        os.reset();
        os
    }

    /// Power-up or warm reset: security status, selections and logical channels are lost.
    pub fn reset(&mut self) {
        self.channels = [Some(Channel::new()), None, None, None];
        self.pin_verified = false;
        self.unblock_verified = false;
        self.pending.clear();
    }

    /// One command APDU in, the card's reaction out.
    pub fn process(&mut self, apdu: &[u8]) -> Reaction {
        match self.spec.fault {
            Fault::Mute => return Reaction::Silence,
            Fault::PullOn(ins) if apdu.get(1) == Some(&ins) => return Reaction::Pull,
            _ => {}
        }
        let answer = self.answer(apdu);
        Reaction::Answer(match self.garbler.as_mut() {
            Some(g) => g.spoil(answer),
            None => answer,
        })
    }

    fn answer(&mut self, apdu: &[u8]) -> Vec<u8> {
        if apdu.len() < 4 {
            return sw(0x6700);
        }
        let (cla, ins, p1, p2) = (apdu[0], apdu[1], apdu[2], apdu[3]);
        // Body: Lc data [Le] or Le alone.
        let (data, le): (&[u8], Option<u8>) = match apdu.len() {
            4 => (&[], None),
            5 => (&[], Some(apdu[4])),
            n => {
                let lc = apdu[4] as usize;
                if lc == 0 || n < 5 + lc || n > 6 + lc {
                    return sw(0x6700);
                }
                (&apdu[5..5 + lc], apdu.get(5 + lc).copied())
            }
        };
        if cla & 0x80 != 0 && !(cla == 0x80 && self.spec.generation == Generation::Cps3) {
            return sw(0x6E00);
        }
        if ins == 0xC0 {
            return self.get_response(le);
        }
        self.pending.clear();
        let channel = (cla & 0x03) as usize;
        if channel != 0 && self.spec.generation == Generation::Cps3 {
            return sw(0x6881);
        }
        if ins == 0x70 {
            return self.manage_channel(p1, p2, le);
        }
        if self.channels[channel].is_none() {
            return sw(0x6881);
        }
        if let Some(wedge) = self.wedge.as_mut() {
            if let Some(status) = wedge.step(Command { channel, ins, p1, data }, self.pin_verified) {
                return sw(status);
            }
        }
        let chained = cla & 0x10 != 0;
        let (out, status) = match ins {
            0xA4 => self.select(channel, p1, p2, data),
            0xB0 => return self.read_binary(channel, p1, p2, le),
            0xCB => self.get_data(channel, p1, p2, data),
            0x20 => (Vec::new(), self.verify(p1, p2, data)),
            0x24 => (Vec::new(), self.change_reference_data(p1, p2, data)),
            0x2C => (Vec::new(), self.reset_retry_counter(p1, p2, data)),
            0x22 => (Vec::new(), self.mse(channel, p1, p2, data)),
            0x88 if self.spec.generation == Generation::Cps3 => self.internal_authenticate(channel, data),
            0x2A => self.pso(channel, p1, p2, data, chained),
            _ => (Vec::new(), 0x6D00),
        };
        self.respond(out, status, !data.is_empty())
    }

    /// T=0: a command that sent data and gets data back answers `61xx`; the data waits for GET RESPONSE.
    fn respond(&mut self, out: Vec<u8>, status: Sw, had_data: bool) -> Vec<u8> {
        if out.is_empty() || status != OK {
            return sw(status);
        }
        if self.spec.t0 && had_data {
            let n = out.len();
            self.pending = out;
            return vec![0x61, if n >= 256 { 0 } else { n as u8 }];
        }
        [out, sw(OK)].concat()
    }

    fn get_response(&mut self, le: Option<u8>) -> Vec<u8> {
        if self.pending.is_empty() {
            return sw(0x6985);
        }
        let want = match le {
            None | Some(0) => 256,
            Some(n) => n as usize,
        };
        if want > self.pending.len() {
            let n = self.pending.len();
            return vec![0x6C, n as u8];
        }
        let rest = self.pending.split_off(want);
        let out = std::mem::replace(&mut self.pending, rest);
        let status = match self.pending.len() {
            0 => sw(OK),
            n => vec![0x61, if n >= 256 { 0 } else { n as u8 }],
        };
        [out, status].concat()
    }

    fn manage_channel(&mut self, p1: u8, p2: u8, le: Option<u8>) -> Vec<u8> {
        if self.spec.generation == Generation::Cps3 {
            return sw(0x6D00);
        }
        match (p1, p2) {
            (0x00, 0x00) if le == Some(1) => match (1..4).find(|&c| self.channels[c].is_none()) {
                Some(c) => {
                    self.channels[c] = Some(Channel::new());
                    vec![c as u8, 0x90, 0x00]
                }
                None => sw(0x6A81),
            },
            (0x80, c @ 1..=3) => {
                self.channels[c as usize] = None;
                sw(OK)
            }
            _ => sw(0x6A86),
        }
    }

    fn ch(&mut self, channel: usize) -> &mut Channel {
        self.channels[channel].as_mut().expect("channel checked open")
    }

    fn select(&mut self, channel: usize, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, Sw) {
        let current = self.channels[channel].as_ref().map_or(MF, |c| c.current);
        let df = self.spec.fs.df_of(current);
        let target = match p1 {
            // OpenSC's iasecc driver selects the MF with P1=02 too, and real CPS3 cards accept it.
            0x00 | 0x02 if data.is_empty() || data == [0x3F, 0x00] => Some(MF),
            0x00 | 0x02 if data.len() == 2 => self.spec.fs.child(df, u16::from_be_bytes([data[0], data[1]])),
            0x04 => self.spec.fs.by_aid(data),
            0x08 => self.spec.fs.walk(MF, data),
            0x09 => self.spec.fs.walk(df, data),
            _ => return (Vec::new(), 0x6A86),
        };
        if !matches!(p2, 0x04 | 0x0C) {
            return (Vec::new(), 0x6A86);
        }
        let Some(target) = target else { return (Vec::new(), 0x6A82) };
        if p1 == 0x02 && self.spec.fs.is_df(target) && target != MF {
            return (Vec::new(), 0x6A82);
        }
        self.ch(channel).current = target;
        if p2 == 0x04 {
            (self.spec.fs.fcp(target), OK)
        } else {
            (Vec::new(), OK)
        }
    }

    /// READ BINARY, by the current EF or by short file identifier. At most 0xE7 bytes per call; asking for
    /// more than there is gets `6Cxx` with what there is.
    fn read_binary(&mut self, channel: usize, p1: u8, p2: u8, le: Option<u8>) -> Vec<u8> {
        let current = self.ch(channel).current;
        let (ef, offset) = if p1 & 0x80 != 0 {
            let df = self.spec.fs.df_of(current);
            let found = self.spec.fs.by_sfi(df, p1 & 0x1F).or_else(|| self.spec.fs.by_sfi(MF, p1 & 0x1F));
            match found {
                Some(ef) => {
                    self.ch(channel).current = ef;
                    (ef, p2 as usize)
                }
                None => return sw(0x6A82),
            }
        } else {
            (current, u16::from_be_bytes([p1, p2]) as usize)
        };
        let Body::Ef { content, read, .. } = &self.spec.fs.nodes[ef].body else { return sw(0x6986) };
        match read {
            ReadAccess::Never => return sw(0x6982),
            ReadAccess::ContactOnly if self.spec.contactless => return sw(0x6982),
            _ => {}
        }
        if offset >= content.len() {
            return sw(0x6B00);
        }
        let n = (content.len() - offset).min(0xE7);
        let want = match le {
            None | Some(0) => 256,
            Some(l) => l as usize,
        };
        if want > n {
            return vec![0x6C, n as u8];
        }
        [content[offset..offset + want].to_vec(), sw(OK)].concat()
    }

    /// GET DATA on a security data object (IAS-ECC `CB 3F FF`, header list `4D 70 { BF <class> <ref> <tag> }`):
    /// the CHV's DOCP (tries, ACLs) or its size limits (7F41), a private key's DOCP (size, ACLs); a key's
    /// public part (7F48) is refused with `6A80`, as OpenSC expects of CPx cards.
    fn get_data(&mut self, channel: usize, p1: u8, p2: u8, data: &[u8]) -> (Vec<u8>, Sw) {
        use crate::der::tlv;
        if (p1, p2) != (0x3F, 0xFF) || self.spec.generation != Generation::Cps3 {
            return (Vec::new(), 0x6A88);
        }
        let Some(pos) = data.iter().position(|b| *b == 0xBF) else { return (Vec::new(), 0x6A80) };
        let (Some(&class), Some(&reference), Some(&len)) =
            (data.get(pos + 1), data.get(pos + 2), data.get(pos + 3))
        else {
            return (Vec::new(), 0x6A80);
        };
        let want = data.get(pos + 4..pos + 4 + len as usize).unwrap_or(&[]);
        let current = self.ch(channel).current;
        let current_df = self.spec.fs.df_of(current);
        let body = match class {
            0x81 => {
                if current_df != MF {
                    return (Vec::new(), 0x6A88);
                }
                let is_pin = self.spec.pin.as_ref().is_some_and(|p| p.reference == reference);
                let secret = [self.spec.pin.as_ref(), self.spec.unblock.as_ref()];
                let Some(pin) = secret.into_iter().flatten().find(|p| p.reference == reference) else {
                    return (Vec::new(), 0x6A88);
                };
                if want.starts_with(&[0x7F, 0x41]) {
                    let min = if is_pin { 4 } else { pin.value.len() as u8 };
                    tlv(
                        &[0x7F, 0x41],
                        &[tlv(&[0x80], &[pin.value.len() as u8]), tlv(&[0x81], &[min])].concat(),
                    )
                } else {
                    // ACLs (AM F3): the code porteur's change always, verify always, reset under SE#3 user
                    // auth, put-data never; the code de déblocage's (not known, made up): change and reset
                    // never, verify always.
                    let acl = if is_pin {
                        [0xF3, 0x00, 0x00, 0x13, 0xFF, 0x00]
                    } else {
                        [0xF3, 0xFF, 0x00, 0xFF, 0xFF, 0x00]
                    };
                    let docp = [
                        tlv(&[0x9A], &[pin.max_tries]),
                        tlv(&[0x9B], &[pin.tries_left]),
                        tlv(&[0xA1], &tlv(&[0x8C], &acl)),
                    ]
                    .concat();
                    tlv(&[0xA0], &docp)
                }
            }
            0x90 => {
                let Some(key) = self.spec.keys.iter().find(|k| {
                    k.reference & 0x7F == reference & 0x7F && self.spec.fs.is_under(current_df, k.app_df)
                }) else {
                    return (Vec::new(), 0x6A88);
                };
                if !want.starts_with(&[0xA0]) {
                    return (Vec::new(), 0x6A80);
                }
                // SCBs for sign, internal auth, decipher, generate, (reserved), put data, get data.
                let user = if key.needs_pin { 0x11 } else { 0x00 };
                let (sign, auth) = if key.cds { (user, 0xFF) } else { (0xFF, user) };
                let acl = [0x7F, sign, auth, auth, 0xFF, 0xFF, 0xFF, 0x00];
                let size = (key.key.size() as u16 * 8).to_be_bytes();
                tlv(&[0xA0], &[tlv(&[0x80], &size), tlv(&[0xA1], &tlv(&[0x8C], &acl))].concat())
            }
            _ => return (Vec::new(), 0x6A88),
        };
        (tlv(&[0x70], &tlv(&[0xBF, class, reference], &body)), OK)
    }

    /// The code porteur or the code de déblocage with this reference, and whether it is verified.
    fn secret(&mut self, reference: u8) -> Option<(&mut Pin, &mut bool)> {
        if let Some(pin) = self.spec.pin.as_mut().filter(|p| p.reference == reference) {
            return Some((pin, &mut self.pin_verified));
        }
        self.spec
            .unblock
            .as_mut()
            .filter(|p| p.reference == reference)
            .map(|p| (p, &mut self.unblock_verified))
    }

    /// VERIFY of the code porteur or of the code de déblocage; without data, the tries left (`63 Cx`).
    fn verify(&mut self, p1: u8, p2: u8, data: &[u8]) -> Sw {
        let Some((secret, verified)) = self.secret(p2) else { return 0x6A88 };
        if p1 == 0xFF {
            *verified = false;
            return OK;
        }
        if p1 != 0x00 {
            return 0x6A86;
        }
        if secret.tries_left == 0 {
            return 0x6983;
        }
        if data.is_empty() {
            return if *verified { OK } else { 0x63C0 | secret.tries_left as Sw };
        }
        let status = secret.check(data);
        if status != 0x6700 {
            *verified = status == OK;
        }
        status
    }

    /// CHANGE REFERENCE DATA of the code porteur: P1 `00` with the current and the new value (the card
    /// checks the current one, a wrong one spends a try), P1 `01` with the new value only once the code
    /// porteur or the code de déblocage is verified (ChipDoc's form after a VERIFY). Each value has the
    /// stored length (`67 00` otherwise, no try spent); a blocked code porteur cannot be changed.
    fn change_reference_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> Sw {
        let Some(pin) = self.spec.pin.as_mut().filter(|p| p.reference == p2) else { return 0x6A88 };
        if pin.tries_left == 0 {
            return 0x6983;
        }
        let n = pin.value.len();
        match p1 {
            0x00 if data.len() != 2 * n => 0x6700,
            0x00 => {
                let status = pin.check(&data[..n]);
                self.pin_verified = status == OK;
                if status == OK {
                    pin.value = data[n..].to_vec();
                }
                status
            }
            0x01 if !(self.pin_verified || self.unblock_verified) => 0x6982,
            0x01 if data.len() != n => 0x6700,
            0x01 => {
                pin.value = data.to_vec();
                OK
            }
            _ => 0x6A86,
        }
    }

    /// RESET RETRY COUNTER of the code porteur, allowed once the code de déblocage is verified (the
    /// code porteur's reset ACL): P1 `02` with a new value (IAS-ECC), P1 `03` without data, the counter
    /// only (ChipDoc, followed by CHANGE REFERENCE DATA P1 `01`). The forms carrying the code de
    /// déblocage in the data (P1 `00`, `01`) are refused (`6A 86`).
    fn reset_retry_counter(&mut self, p1: u8, p2: u8, data: &[u8]) -> Sw {
        let Some(pin) = self.spec.pin.as_mut().filter(|p| p.reference == p2) else { return 0x6A88 };
        match p1 {
            0x02 | 0x03 if !self.unblock_verified => 0x6982,
            0x02 if data.len() != pin.value.len() => 0x6700,
            0x03 if !data.is_empty() => 0x6700,
            0x02 | 0x03 => {
                if p1 == 0x02 {
                    pin.value = data.to_vec();
                }
                pin.tries_left = pin.max_tries;
                OK
            }
            _ => 0x6A86,
        }
    }

    fn key(&self, reference: u8) -> Option<&CardKey> {
        self.spec.keys.iter().find(|k| k.reference == reference)
    }

    /// MANAGE SECURITY ENVIRONMENT SET: AT (A4), DST (B6), HT (AA), CT (B8); tags 80 (algorithm),
    /// 84/83 (key), in either order; the CPS4 form `91 02 <alg> <key|80>` too.
    fn mse(&mut self, channel: usize, p1: u8, p2: u8, data: &[u8]) -> Sw {
        if !matches!(p1, 0x41 | 0x81) {
            return 0x6A86;
        }
        let mut alg = None;
        let mut key = None;
        let mut i = 0;
        while i + 2 <= data.len() {
            let (tag, len) = (data[i], data[i + 1] as usize);
            let Some(value) = data.get(i + 2..i + 2 + len) else { return 0x6A80 };
            match (tag, len) {
                (0x80, 1) => alg = Some(value[0]),
                (0x84 | 0x83, 1) => key = Some(value[0]),
                (0x91, 2) if self.spec.generation == Generation::Cps4 => {
                    alg = Some(value[0]);
                    key = Some(value[1] & 0x7F);
                }
                _ => return 0x6A80,
            }
            i += 2 + len;
        }
        if i != data.len() {
            return 0x6A80;
        }
        let generation = self.spec.generation;
        let key_known = key.is_none_or(|k| self.key(k).is_some());
        let ch = self.ch(channel);
        match (p2, alg, key) {
            (0xAA, Some(a), None) => ch.env.ht = Some(a),
            (0xA4 | 0xB6 | 0xB8, _, Some(k)) => {
                // A CT with no algorithm (the CPS4's `83 01 <key>`) means raw RSA decipher.
                let Some(a) = alg.or((p2 == 0xB8).then_some(0x1A)) else { return 0x6A80 };
                let (ok_algs, slot): (&[u8], _) = match (generation, p2) {
                    (Generation::Cps3, 0xA4) => (&[0x02], &mut ch.env.at),
                    (Generation::Cps3, 0xB6) => (&[0x12, 0x42], &mut ch.env.dst),
                    (Generation::Cps3, _) => (&[0x0A, 0x1A], &mut ch.env.ct),
                    (Generation::Cps4, 0xB6) => (&[0x0A, 0x28, 0x15, 0x2C], &mut ch.env.dst),
                    (Generation::Cps4, 0xB8) => (&[0x0A, 0x1A], &mut ch.env.ct),
                    (Generation::Cps4, _) => return 0x6A80,
                };
                if !ok_algs.contains(&a) {
                    return 0x6A80;
                }
                if !key_known {
                    return 0x6A88;
                }
                *slot = Some((a, k));
                ch.hash = None;
            }
            _ => return 0x6A80,
        }
        OK
    }

    /// Checks that the key may be used now: it exists, its application is selected on this channel and,
    /// when it needs the code porteur, the PIN was verified.
    fn usable_key(&self, channel: usize, reference: u8) -> Result<&CardKey, Sw> {
        let key = self.key(reference).ok_or(0x6A88u16)?;
        let current = self.channels[channel].as_ref().map_or(MF, |c| c.current);
        let in_app = self.spec.fs.is_under(current, key.app_df)
            || self.spec.generation == Generation::Cps3 && self.spec.fs.df_of(current) == MF;
        if !in_app {
            return Err(0x6985);
        }
        if key.needs_pin && !self.pin_verified {
            return Err(0x6982);
        }
        Ok(key)
    }

    /// INTERNAL AUTHENTICATE (CPS3): PKCS#1 v1.5 type-1 padding of the given DigestInfo and a raw RSA
    /// private operation; the input may be at most 40 % of the modulus.
    fn internal_authenticate(&mut self, channel: usize, data: &[u8]) -> (Vec<u8>, Sw) {
        let Some((_, reference)) = self.ch(channel).env.at else { return (Vec::new(), 0x6985) };
        let key = match self.usable_key(channel, reference) {
            Ok(k) if k.internal_auth => k,
            Ok(_) => return (Vec::new(), 0x6985),
            Err(s) => return (Vec::new(), s),
        };
        if data.is_empty() || data.len() * 10 > key.key.size() * 4 {
            return (Vec::new(), 0x6700);
        }
        let signed = key.key.sign(Pkcs1v15Sign::new_unprefixed(), data);
        self.rsa_ops += 1;
        match signed {
            Ok(sig) => (sig, OK),
            Err(_) => (Vec::new(), 0x6F00),
        }
    }

    fn pso(&mut self, channel: usize, p1: u8, p2: u8, data: &[u8], chained: bool) -> (Vec<u8>, Sw) {
        match (p1, p2) {
            (0x90, 0xA0) => (Vec::new(), self.pso_hash(channel, data)),
            (0x9E, 0x9A) => self.pso_cds(channel, data),
            (0x80, 0x86) => self.pso_decipher(channel, data, chained),
            _ => (Vec::new(), 0x6A86),
        }
    }

    /// PSO HASH: `90 20|30|40 <hash>` (hash done on the host), `90 00 80 nn <data>` (the card hashes), or
    /// `90 28 <SHA-256 state><bit count> 80 nn <last block>` (the card finishes a hash the host started).
    fn pso_hash(&mut self, channel: usize, data: &[u8]) -> Sw {
        let Some(alg) = self.ch(channel).env.ht else { return 0x6985 };
        if alg != 0x40 || data.len() < 2 || data[0] != 0x90 {
            return 0x6A80;
        }
        let n = data[1] as usize;
        let Some(inner) = data.get(2..2 + n) else { return 0x6A80 };
        let rest = &data[2 + n..];
        let last = match rest {
            [] => None,
            [0x80, m, tail @ ..] if tail.len() == *m as usize => Some(tail),
            _ => return 0x6A80,
        };
        let hash = match (n, last) {
            (32, None) => inner.to_vec(),
            (0, Some(msg)) => Sha256::digest(msg).to_vec(),
            (40, Some(msg)) => match finish_sha256(&inner[..32], &inner[32..], msg) {
                Some(h) => h,
                None => return 0x6A80,
            },
            _ => return 0x6A80,
        };
        self.ch(channel).hash = Some(hash);
        OK
    }

    /// PSO COMPUTE DIGITAL SIGNATURE with the DST's key and algorithm, on the hash given here or by PSO HASH.
    fn pso_cds(&mut self, channel: usize, data: &[u8]) -> (Vec<u8>, Sw) {
        if self.spec.contactless {
            return (Vec::new(), 0x6985);
        }
        let Some((alg, reference)) = self.ch(channel).env.dst else { return (Vec::new(), 0x6985) };
        let hash = if data.is_empty() { self.ch(channel).hash.take() } else { Some(data.to_vec()) };
        let Some(hash) = hash else { return (Vec::new(), 0x6985) };
        let key = match self.usable_key(channel, reference) {
            Ok(k) if k.cds => k,
            Ok(_) => return (Vec::new(), 0x6985),
            Err(s) => return (Vec::new(), s),
        };
        let signed = match (alg, hash.len()) {
            (0x42 | 0x28, 32) => key.key.sign(Pkcs1v15Sign::new::<Sha256>(), &hash),
            (0x12 | 0x0A, 20) => key.key.sign(Pkcs1v15Sign::new::<sha1::Sha1>(), &hash),
            (0x2C, 32) => key.key.sign_with_rng(&mut OsRng, Pss::new::<Sha256>(), &hash),
            (0x15, 20) => key.key.sign_with_rng(&mut OsRng, Pss::new::<sha1::Sha1>(), &hash),
            _ => return (Vec::new(), 0x6700),
        };
        self.rsa_ops += 1;
        match signed {
            Ok(sig) => (sig, OK),
            Err(_) => (Vec::new(), 0x6F00),
        }
    }

    /// PSO DECIPHER with command chaining (CLA b5). CPS3 takes a padding-indicator byte (0x81) and removes
    /// PKCS#1 type-2 padding; CPS4 returns the raw RSA result (ChipDoc's way to sign with host padding).
    fn pso_decipher(&mut self, channel: usize, data: &[u8], chained: bool) -> (Vec<u8>, Sw) {
        let ch = self.ch(channel);
        ch.chain.extend_from_slice(data);
        if chained {
            return (Vec::new(), OK);
        }
        let input = std::mem::take(&mut ch.chain);
        let Some((_, reference)) = ch.env.ct else { return (Vec::new(), 0x6985) };
        let key = match self.usable_key(channel, reference) {
            Ok(k) => k,
            Err(s) => return (Vec::new(), s),
        };
        let cryptogram = match self.spec.generation {
            Generation::Cps3 => match input.split_first() {
                Some((0x81, c)) => c,
                _ => return (Vec::new(), 0x6A80),
            },
            Generation::Cps4 => &input[..],
        };
        if cryptogram.len() != key.key.size() {
            return (Vec::new(), 0x6700);
        }
        let c = BigUint::from_bytes_be(cryptogram);
        let size = key.key.size();
        let decrypted = rsa::hazmat::rsa_decrypt_and_check(&key.key, Some(&mut OsRng), &c);
        self.rsa_ops += 1;
        let Ok(m) = decrypted else { return (Vec::new(), 0x6A80) };
        let mut block = m.to_bytes_be();
        while block.len() < size {
            block.insert(0, 0);
        }
        match self.spec.generation {
            Generation::Cps4 => (block, OK),
            Generation::Cps3 => match block.get(..2) {
                Some([0x00, 0x02]) => match block[2..].iter().position(|b| *b == 0) {
                    Some(z) => (block[3 + z..].to_vec(), OK),
                    None => (Vec::new(), 0x6A80),
                },
                _ => (Vec::new(), 0x6A80),
            },
        }
    }
}

/// Finishes a SHA-256 from an intermediate state (32 bytes) and the count of bits already hashed (8 bytes).
fn finish_sha256(state: &[u8], count: &[u8], last: &[u8]) -> Option<Vec<u8>> {
    let bits = u64::from_be_bytes(count.try_into().ok()?);
    if bits % 512 != 0 {
        return None;
    }
    let mut h = [0u32; 8];
    for (i, w) in state.chunks(4).enumerate() {
        h[i] = u32::from_be_bytes(w.try_into().ok()?);
    }
    let total = bits + 8 * last.len() as u64;
    let mut tail = last.to_vec();
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&total.to_be_bytes());
    let blocks: Vec<sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>> =
        tail.chunks(64).map(|c| *sha2::digest::generic_array::GenericArray::from_slice(c)).collect();
    sha2::compress256(&mut h, &blocks);
    Some(h.iter().flat_map(|w| w.to_be_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finishes_a_sha256_started_elsewhere() {
        let msg: Vec<u8> = (0..150u8).collect();
        // State after the first 128 bytes (two blocks), computed with compress256 from the IV.
        let mut h: [u32; 8] =
            [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
        let blocks: Vec<_> = msg[..128]
            .chunks(64)
            .map(|c| *sha2::digest::generic_array::GenericArray::from_slice(c))
            .collect();
        sha2::compress256(&mut h, &blocks);
        let state: Vec<u8> = h.iter().flat_map(|w| w.to_be_bytes()).collect();
        let got = finish_sha256(&state, &1024u64.to_be_bytes(), &msg[128..]).unwrap();
        assert_eq!(got, Sha256::digest(&msg).to_vec());
    }
}
