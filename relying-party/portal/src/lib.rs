//! The parts of the demo portal that read browser input before any database call, as a library: the
//! binary (`main.rs`) uses them, and so does the fuzz target `portal_form` (docs/fuzzing.md).

pub mod forms;
