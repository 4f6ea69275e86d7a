//! How long the virtual card takes to answer, so that benchmarks see real-card speed: a fixed cost per
//! APDU (reader, USB, card OS), a cost per byte on the wire (ISO 7816-3: 12 elementary time units per
//! character at the rate the ATR's TA1 offers), and the time of one RSA private-key operation.
//!
//! Off by default (the tests want speed). `--latency real` is the model documented in
//! docs/benchmarks.md, with the public figures it comes from.

use std::time::Duration;

/// The latency model of one virtual card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// Fixed cost of one command–response pair (reader, transport, command dispatch in the card).
    pub per_apdu: Duration,
    /// Bits per second on the card's contacts; `None`: the rate the ATR offers (TA1, at 3.5712 MHz).
    pub baud: Option<u32>,
    /// One RSA-2048 private-key operation (INTERNAL AUTHENTICATE, PSO CDS, PSO DECIPHER).
    pub rsa: Duration,
}

impl Default for Latency {
    fn default() -> Self {
        Self::OFF
    }
}

impl Latency {
    /// No delay at all (what the tests use).
    pub const OFF: Latency = Latency { per_apdu: Duration::ZERO, baud: None, rsa: Duration::ZERO };

    /// The documented real-card model (docs/benchmarks.md): 90 ms per APDU, the bytes at the rate the
    /// ATR offers (CPS3: 9600 bit/s; CPS4: 115 200 bit/s), 250 ms per RSA-2048 operation.
    pub const REAL: Latency =
        Latency { per_apdu: Duration::from_millis(90), baud: None, rsa: Duration::from_millis(250) };

    /// No delay of any kind.
    pub fn is_off(&self) -> bool {
        self.per_apdu.is_zero() && self.rsa.is_zero() && self.baud.is_none()
    }

    /// The delay of one exchange: `command` and `response` bytes on the wire, `rsa_ops` RSA operations
    /// done by the card for it. With the model off, nothing.
    pub fn delay(&self, atr: &[u8], command: usize, response: usize, rsa_ops: u32) -> Duration {
        if self.is_off() {
            return Duration::ZERO;
        }
        let baud = self.baud.unwrap_or_else(|| atr_baud(atr)).max(1) as u64;
        let bytes = (command + response) as u64;
        // 12 etu per character (start bit, 8 data bits, parity, 2 etu guard time); 1 etu = 1/baud s.
        let wire = Duration::from_micros(bytes * 12 * 1_000_000 / baud);
        self.per_apdu + wire + self.rsa * rsa_ops
    }
}

impl std::str::FromStr for Latency {
    type Err = String;

    /// `off`, `real`, or `apdu=MS,baud=N,rsa=MS` (any of the three; the others from `real`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" | "none" => return Ok(Self::OFF),
            "real" => return Ok(Self::REAL),
            _ => {}
        }
        let mut model = Self::REAL;
        for part in s.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("latency: {part:?} is not KEY=VALUE (apdu=MS, baud=N, rsa=MS)"))?;
            let number: u64 = value
                .trim_end_matches("ms")
                .parse()
                .map_err(|_| format!("latency: {value:?} is not a number"))?;
            match key {
                "apdu" => model.per_apdu = Duration::from_millis(number),
                "rsa" => model.rsa = Duration::from_millis(number),
                "baud" => {
                    model.baud =
                        Some(u32::try_from(number).map_err(|_| "latency: baud too large".to_owned())?.max(1))
                }
                _ => return Err(format!("latency: unknown key {key:?} (apdu, baud, rsa)")),
            }
        }
        Ok(model)
    }
}

/// The bit rate an ATR offers: TA1's Fi/Di at the usual 3.5712 MHz clock (ISO 7816-3 tables 7 and 8);
/// 9600 bit/s when there is no TA1 (Fi = 372, Di = 1), as on the CPS3 contact ATR.
pub fn atr_baud(atr: &[u8]) -> u32 {
    const FI: [u32; 16] = [372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0];
    const DI: [u32; 16] = [0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0];
    let ta1 = match atr.get(1) {
        Some(t0) if t0 & 0x10 != 0 => atr.get(2).copied(),
        _ => None,
    };
    let Some(ta1) = ta1 else { return 9600 };
    let (fi, di) = (FI[(ta1 >> 4) as usize], DI[(ta1 & 0x0F) as usize]);
    if fi == 0 || di == 0 {
        return 9600;
    }
    9600 * 372 / fi * di
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_the_real_atrs() {
        let cps3 = hex::decode("3BAC00402A001225006480000310009000").unwrap();
        let cps4 = hex::decode("3B9B188001001225006480040100009044").unwrap();
        assert_eq!(atr_baud(&cps3), 9600, "no TA1: Fi 372, Di 1");
        assert_eq!(atr_baud(&cps4), 115_200, "TA1 18: Fi 372, Di 12");
    }

    #[test]
    fn delay_adds_apdu_bytes_and_rsa() {
        let cps3 = hex::decode("3BAC00402A001225006480000310009000").unwrap();
        assert_eq!(Latency::OFF.delay(&cps3, 300, 300, 1), Duration::ZERO);
        // 10 bytes at 9600 bit/s = 120 etu = 12.5 ms.
        assert_eq!(Latency::REAL.delay(&cps3, 5, 5, 0), Duration::from_micros(90_000 + 12_500));
        assert_eq!(Latency::REAL.delay(&cps3, 5, 5, 1), Duration::from_micros(340_000 + 12_500));
        let custom: Latency = "apdu=5,baud=115200,rsa=100".parse().unwrap();
        assert_eq!(custom.delay(&cps3, 0, 0, 2), Duration::from_millis(205));
        assert!("apdu=x".parse::<Latency>().is_err());
        assert!("speed=1".parse::<Latency>().is_err());
        assert_eq!("off".parse::<Latency>().unwrap(), Latency::OFF);
    }
}
