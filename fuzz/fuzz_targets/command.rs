//! Fuzz target `command`: see fuzz/README.md. The body (fuzz/checks/) is shared
//! with the stable regression test (tests/fuzz_regressions.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    include!("../checks/command.rs");
});
