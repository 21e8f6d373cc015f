//! Fault injection for the test suite, driven by environment variables so that the real
//! `pipeline` binary can be made to fail at a chosen place (e.g. `JETPIPE_FAULT_PANIC_JET=17`
//! makes the worker converting source jet 17 panic). Unset, each check is one cached lookup.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The numeric value of fault variable `name`, read once per process.
fn value(name: &'static str) -> Option<u64> {
    static VALUES: OnceLock<std::sync::Mutex<HashMap<&'static str, Option<u64>>>> = OnceLock::new();
    let map = VALUES.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    *map.entry(name)
        .or_insert_with(|| std::env::var(name).ok()?.trim().parse().ok())
}

/// Panics when the fault variable `name` is set to `at`.
pub fn panic_if(name: &'static str, at: u64) {
    if value(name) == Some(at) {
        panic!("injected fault {name}={at}");
    }
}
