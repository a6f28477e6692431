//! A stand-in libnvidia-ml for ruperf's tests.
//!
//! It exports the NVML entry points ruperf reaches through nvml-wrapper (init, shutdown, driver
//! version, device count, handles, name, total energy, power usage, error strings) and answers
//! them from a state file, re-read on every call so that a test can change the values between
//! readings. The file is `$NVML_STANDIN_STATE` if set, else this library's own path with
//! `.state` appended. Lines:
//!
//! ```text
//! # comment
//! init 9                    optional: nvmlInit_v2 returns this code (9 = driver not loaded)
//! gpu <name> <energy> <power>
//! lost <index>              optional: GPU <index> fell off the bus: every query about it
//!                           (name, energy, power) returns NVML_ERROR_GPU_IS_LOST (15)
//! ```
//!
//! one `gpu` line per device, `<energy>` in mJ and `<power>` in mW, `-` for NOT_SUPPORTED.
//! Rewriting the file while ruperf runs changes what the next call answers: a test makes a
//! GPU get lost mid-run by adding a `lost` line, or a driver reload by lowering `<energy>`.
//! docs/energy-seams.md describes this layout with the other fake-tree seams.

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr};

type Ret = c_uint;
const SUCCESS: Ret = 0;
const INVALID_ARGUMENT: Ret = 2;
const NOT_SUPPORTED: Ret = 3;
const INSUFFICIENT_SIZE: Ret = 7;
const GPU_IS_LOST: Ret = 15;
const UNKNOWN: Ret = 999;

struct Gpu {
    name: String,
    energy_mj: Option<u64>,
    power_mw: Option<u32>,
    lost: bool,
}

struct State {
    init: Ret,
    gpus: Vec<Gpu>,
}

#[repr(C)]
struct DlInfo {
    dli_fname: *const c_char,
    dli_fbase: *mut c_void,
    dli_sname: *const c_char,
    dli_saddr: *mut c_void,
}

extern "C" {
    fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
}

fn state_path() -> Option<String> {
    if let Ok(p) = std::env::var("NVML_STANDIN_STATE") {
        return Some(p);
    }
    let mut info = DlInfo {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only writes `info`; the address is a function of this library.
    let ok = unsafe { dladdr(state_path as *const c_void, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a NUL-terminated path owned by the loader.
    let lib = unsafe { CStr::from_ptr(info.dli_fname) };
    Some(format!("{}.state", lib.to_string_lossy()))
}

fn load() -> Result<State, Ret> {
    let text = std::fs::read_to_string(state_path().ok_or(UNKNOWN)?).map_err(|_| UNKNOWN)?;
    let mut state = State {
        init: SUCCESS,
        gpus: Vec::new(),
    };
    let mut lost = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [c, ..] if c.starts_with('#') => {}
            ["init", code] => state.init = code.parse().map_err(|_| UNKNOWN)?,
            ["gpu", name, energy, power] => state.gpus.push(Gpu {
                name: name.to_string(),
                energy_mj: energy.parse().ok(),
                power_mw: power.parse().ok(),
                lost: false,
            }),
            ["lost", index] => lost.push(index.parse::<usize>().map_err(|_| UNKNOWN)?),
            _ => return Err(UNKNOWN),
        }
    }
    for i in lost {
        if let Some(g) = state.gpus.get_mut(i) {
            g.lost = true;
        }
    }
    Ok(state)
}

fn with_gpu(device: *mut c_void, f: impl FnOnce(&Gpu) -> Ret) -> Ret {
    let state = match load() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let index = (device as usize).wrapping_sub(1);
    match state.gpus.get(index) {
        Some(gpu) if gpu.lost => GPU_IS_LOST,
        Some(gpu) => f(gpu),
        None => INVALID_ARGUMENT,
    }
}

/// Copies `s` into a caller buffer of `len` bytes, NUL-terminated.
///
/// # Safety
/// `buf` must point to `len` writable bytes.
unsafe fn copy_out(s: &str, buf: *mut c_char, len: c_uint) -> Ret {
    if buf.is_null() {
        return INVALID_ARGUMENT;
    }
    let bytes = s.as_bytes();
    if bytes.len() + 1 > len as usize {
        return INSUFFICIENT_SIZE;
    }
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
    *buf.add(bytes.len()) = 0;
    SUCCESS
}

#[no_mangle]
pub extern "C" fn nvmlInit_v2() -> Ret {
    match load() {
        Ok(s) => s.init,
        Err(code) => code,
    }
}

#[no_mangle]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> Ret {
    nvmlInit_v2()
}

#[no_mangle]
pub extern "C" fn nvmlShutdown() -> Ret {
    SUCCESS
}

/// # Safety
/// `version` must point to `length` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) -> Ret {
    // SAFETY: the caller provides `length` bytes at `version`.
    unsafe { copy_out("550.00-standin", version, length) }
}

/// # Safety
/// `count` must point to a writable unsigned int.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> Ret {
    if count.is_null() {
        return INVALID_ARGUMENT;
    }
    match load() {
        // SAFETY: checked non-null; the caller provides the storage.
        Ok(s) => unsafe {
            *count = s.gpus.len() as c_uint;
            SUCCESS
        },
        Err(code) => code,
    }
}

/// # Safety
/// `device` must point to writable handle storage.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut *mut c_void,
) -> Ret {
    if device.is_null() {
        return INVALID_ARGUMENT;
    }
    match load() {
        Ok(s) if (index as usize) < s.gpus.len() => {
            // SAFETY: checked non-null; handles are index + 1 so that none is NULL.
            unsafe { *device = (index as usize + 1) as *mut c_void };
            SUCCESS
        }
        Ok(_) => INVALID_ARGUMENT,
        Err(code) => code,
    }
}

/// # Safety
/// `name` must point to `length` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: *mut c_void,
    name: *mut c_char,
    length: c_uint,
) -> Ret {
    // SAFETY: the caller provides `length` bytes at `name`.
    with_gpu(device, |g| unsafe { copy_out(&g.name, name, length) })
}

/// # Safety
/// `energy` must point to a writable unsigned long long.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTotalEnergyConsumption(
    device: *mut c_void,
    energy: *mut c_ulonglong,
) -> Ret {
    if energy.is_null() {
        return INVALID_ARGUMENT;
    }
    with_gpu(device, |g| match g.energy_mj {
        Some(v) => {
            // SAFETY: checked non-null; the caller provides the storage.
            unsafe { *energy = v };
            SUCCESS
        }
        None => NOT_SUPPORTED,
    })
}

/// # Safety
/// `power` must point to a writable unsigned int.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(device: *mut c_void, power: *mut c_uint) -> Ret {
    if power.is_null() {
        return INVALID_ARGUMENT;
    }
    with_gpu(device, |g| match g.power_mw {
        Some(v) => {
            // SAFETY: checked non-null; the caller provides the storage.
            unsafe { *power = v };
            SUCCESS
        }
        None => NOT_SUPPORTED,
    })
}

#[no_mangle]
pub extern "C" fn nvmlErrorString(result: Ret) -> *const c_char {
    let s: &'static CStr = match result {
        SUCCESS => c"Success",
        INVALID_ARGUMENT => c"Invalid Argument",
        NOT_SUPPORTED => c"Not Supported",
        INSUFFICIENT_SIZE => c"Insufficient Size",
        9 => c"Driver Not Loaded",
        GPU_IS_LOST => c"GPU is lost",
        _ => c"Unknown Error",
    };
    s.as_ptr()
}
