//! What a pinentry program answers, read as the agent reads it (`pin_prompt::read_ok` after each SET
//! command, `pin_prompt::read_answer` after GETPIN or CONFIRM): Assuan lines, `D` data percent-decoded.
#![no_main]

use std::io::Cursor;

use cpx_agent::card::{read_answer, read_ok, Answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The greeting and the answers to the SET commands, then GETPIN's: one stream, as from the program.
    let mut stream = Cursor::new(data);
    for _ in 0..5 {
        if read_ok(&mut stream).is_err() {
            break;
        }
    }
    if let Answer::Ok(Some(pin)) = read_answer(&mut stream) {
        let _ = cpx_card::Pin::new(&pin);
    }
    // The whole input as GETPIN's answer alone.
    let _ = read_answer(&mut Cursor::new(data));
});
