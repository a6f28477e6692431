//! The perf.data reader on arbitrary bytes: header, feature sections and every record.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ruperf::fuzzing::perf_data(data);
});
