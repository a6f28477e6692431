//! The `-e` event grammar on arbitrary text, resolved against a fixed fake machine.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruperf::fuzzing::event_grammar(data);
});
