//! The fault injector: what a misbehaving card does beyond, or instead of, answering (the fault personas
//! and `--garble`/`--pull-on`), kept apart from the card operating system that answers like a real card.

/// What the card does beyond answering (used by the fault personas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers like a healthy card.
    None,
    /// Never answers any APDU.
    Mute,
    /// Leaves the reader when it receives this INS.
    PullOn(u8),
    /// The ChipDoc `69 85` of Cryptolib 5.2's release notes: the first MSE on a logical channel after a
    /// good VERIFY gets `69 85`, and the ChipDoc channel keeps answering `69 85` until the recovery
    /// sequence: SELECT IDS (`A0 00 00 01 51 00 00`) on channel 1, SELECT CPS2ter (`80 25 00 00 01 FF 00 02`)
    /// with CLA 00, SELECT ChipDoc again on channel 1. The code porteur stays verified. Once only.
    ChipDoc6985,
}

impl Fault {
    /// The state a card with this fault starts in: `Some` for [`Fault::ChipDoc6985`] only.
    pub fn initial_wedge(self) -> Option<Wedge> {
        (self == Fault::ChipDoc6985).then_some(Wedge::Armed)
    }
}

/// Where a [`Fault::ChipDoc6985`] card is in its failure and recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wedge {
    /// Waiting for the first MSE after VERIFY.
    Armed,
    /// Answering `69 85` on the ChipDoc channel; the number of recovery steps done (0 to 2).
    Stuck(u8),
    /// Recovered: behaves normally from now on.
    Recovered,
}

/// One command as the wedge sees it: the logical channel it came on, its INS, its P1 and its data.
#[derive(Clone, Copy, Debug)]
pub struct Command<'a> {
    /// Logical channel (the CLA's low two bits).
    pub channel: usize,
    /// Instruction byte.
    pub ins: u8,
    /// First parameter byte.
    pub p1: u8,
    /// Command data (empty when none).
    pub data: &'a [u8],
}

impl Wedge {
    /// Moves the wedge on with one command: `Some(0x6985)` when the card must answer `69 85` instead of
    /// processing it; `None` when the card answers normally (each recovery SELECT is itself answered).
    /// `pin_verified`: the code porteur was verified (the wedge arms on the first MSE after that).
    pub fn step(&mut self, command: Command<'_>, pin_verified: bool) -> Option<u16> {
        let Command { channel, ins, p1, data } = command;
        let select_aid = |aid: &str| ins == 0xA4 && p1 == 0x04 && data == crate::persona::hex(aid).as_slice();
        match *self {
            Wedge::Armed if ins == 0x22 && channel != 0 && pin_verified => {
                *self = Wedge::Stuck(0);
                Some(0x6985)
            }
            Wedge::Stuck(0) if channel == 1 && select_aid(crate::persona::AID_IDS) => {
                *self = Wedge::Stuck(1);
                None
            }
            Wedge::Stuck(1) if channel == 0 && select_aid(crate::persona::AID_CPS2TER) => {
                *self = Wedge::Stuck(2);
                None
            }
            Wedge::Stuck(2) if channel == 1 && select_aid(crate::persona::AID_ECC_ROOT) => {
                *self = Wedge::Recovered;
                None
            }
            Wedge::Stuck(_) if channel != 0 => Some(0x6985),
            _ => None,
        }
    }
}

/// Ways to spoil answers, to test that the driver survives a card that talks nonsense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Garble {
    /// Random bytes instead of the answer (1 to 40 of them).
    Nonsense,
    /// The answer's data cut short, status word kept.
    Truncate,
    /// Extra bytes added to the answer's data.
    WrongLength,
    /// An unexpected status word in place of the real one.
    BadStatus,
}

impl std::str::FromStr for Garble {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nonsense" => Ok(Self::Nonsense),
            "truncate" => Ok(Self::Truncate),
            "wrong-length" => Ok(Self::WrongLength),
            "bad-status" => Ok(Self::BadStatus),
            _ => Err(format!("unknown garble {s:?}: nonsense, truncate, wrong-length or bad-status")),
        }
    }
}

/// Spoils a share of the answers, reproducibly (seeded).
pub struct Garbler {
    /// How an answer is spoilt.
    pub kind: Garble,
    /// Probability that one answer is spoilt.
    pub rate: f64,
    rng: rand::rngs::StdRng,
}

impl Garbler {
    /// A garbler spoiling answers the `kind` way with probability `rate`; the same seed spoils the same
    /// answers the same way.
    pub fn new(kind: Garble, rate: f64, seed: u64) -> Self {
        use rand::SeedableRng;
        Self { kind, rate, rng: rand::rngs::StdRng::seed_from_u64(seed) }
    }

    /// The answer (data and status word), spoilt or left alone.
    pub fn spoil(&mut self, answer: Vec<u8>) -> Vec<u8> {
        use rand::Rng;
        if !self.rng.gen_bool(self.rate.clamp(0.0, 1.0)) {
            return answer;
        }
        let n = answer.len().saturating_sub(2);
        let (data, sw) = answer.split_at(n);
        match self.kind {
            Garble::Nonsense => (0..self.rng.gen_range(1..=40)).map(|_| self.rng.gen()).collect(),
            Garble::Truncate => [&data[..data.len() / 2], sw].concat(),
            Garble::WrongLength => {
                let extra: Vec<u8> = (0..self.rng.gen_range(1..=8)).map(|_| self.rng.gen()).collect();
                [data, &extra, sw].concat()
            }
            Garble::BadStatus => {
                const ODD: [[u8; 2]; 6] =
                    [[0x6F, 0x00], [0x6A, 0x80], [0x69, 0x84], [0x61, 0xFF], [0x6C, 0x00], [0x90, 0x00]];
                [data, &ODD[self.rng.gen_range(0..ODD.len())]].concat()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::{hex, AID_CPS2TER, AID_ECC_ROOT, AID_IDS};

    fn cmd(channel: usize, ins: u8, p1: u8, data: &[u8]) -> Command<'_> {
        Command { channel, ins, p1, data }
    }

    #[test]
    fn only_the_chipdoc_fault_has_a_wedge() {
        assert_eq!(Fault::ChipDoc6985.initial_wedge(), Some(Wedge::Armed));
        for fault in [Fault::None, Fault::Mute, Fault::PullOn(0x88)] {
            assert_eq!(fault.initial_wedge(), None, "{fault:?}");
        }
    }

    #[test]
    fn the_wedge_arms_on_the_first_mse_after_verify_and_recovers_in_order() {
        let mut w = Wedge::Armed;
        assert_eq!(w.step(cmd(1, 0x22, 0x41, &[]), false), None, "no VERIFY yet: normal answer");
        assert_eq!(w, Wedge::Armed);
        assert_eq!(w.step(cmd(1, 0x22, 0x41, &[]), true), Some(0x6985));
        assert_eq!(w.step(cmd(1, 0xB0, 0, &[]), true), Some(0x6985), "stuck on the ChipDoc channel");
        assert_eq!(w.step(cmd(0, 0xB0, 0, &[]), true), None, "channel 0 still answers");
        // Out of order: SELECT ChipDoc before SELECT IDS does not recover.
        assert_eq!(w.step(cmd(1, 0xA4, 0x04, &hex(AID_ECC_ROOT)), true), Some(0x6985));
        assert_eq!(w.step(cmd(1, 0xA4, 0x04, &hex(AID_IDS)), true), None);
        assert_eq!(w.step(cmd(0, 0xA4, 0x04, &hex(AID_CPS2TER)), true), None);
        assert_eq!(w, Wedge::Stuck(2));
        assert_eq!(w.step(cmd(1, 0xA4, 0x04, &hex(AID_ECC_ROOT)), true), None);
        assert_eq!(w, Wedge::Recovered);
        assert_eq!(w.step(cmd(1, 0x22, 0x41, &[]), true), None, "once only");
    }

    #[test]
    fn garbling_is_reproducible_and_rate_zero_spoils_nothing() {
        let answer = vec![1, 2, 3, 4, 5, 6, 0x90, 0x00];
        let mut none = Garbler::new(Garble::Nonsense, 0.0, 7);
        assert_eq!(none.spoil(answer.clone()), answer);
        let run = |seed| {
            let mut g = Garbler::new(Garble::BadStatus, 1.0, seed);
            (0..5).map(|_| g.spoil(answer.clone())).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        let mut t = Garbler::new(Garble::Truncate, 1.0, 1);
        assert_eq!(t.spoil(answer.clone()), vec![1, 2, 3, 0x90, 0x00]);
    }

    #[test]
    fn garble_names_parse() {
        assert_eq!("wrong-length".parse::<Garble>(), Ok(Garble::WrongLength));
        assert!("loud".parse::<Garble>().is_err());
    }
}
