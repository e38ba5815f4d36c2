//! Fuzz target for the configuration: the input, as text, parsed and
//! checked as `flowstatd check-config` does (every section, every sink
//! type built with this crate's features). Errors are fine; panics are not.
#![no_main]

use std::hint::black_box;
use std::path::Path;

use flowstatd::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    if let Ok(config) = Config::parse(text, path) {
        black_box((config.flow_config(), config.decode_config(), config.update_interval()));
        black_box(config.analytics());
        black_box(config.local_networks());
    }
});
