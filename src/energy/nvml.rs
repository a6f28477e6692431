//! NVIDIA GPU energy through NVML (the `nvml-wrapper` crate loads libnvidia-ml at run time).
//!
//! Per GPU, the total-energy counter (mJ since the driver loaded, Volta and newer) is read where
//! supported; a counter that goes down means the driver was reloaded (reported, not taken as a
//! wrap). Where it is not supported, board power (mW) is integrated over every polling interval
//! by the trapezoid rule and the figure is marked as an estimate. GPUs that report neither are
//! skipped with a warning.

use std::ffi::OsStr;
use std::path::Path;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

use crate::energy::{Channel, Domain, Meter, Source, Wrap};

/// The library loaded when no other is chosen.
pub const DEFAULT_LIB: &str = "libnvidia-ml.so.1";

/// How a GPU's energy is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Energy,
    Power,
}

/// Opened NVML and the GPUs that report energy or power.
pub struct NvmlSource {
    nvml: Nvml,
    domains: Vec<Domain>,
    channels: Vec<Channel>,
    gpus: Vec<(u32, Method)>,
    names: Vec<String>,
    warnings: Vec<String>,
    /// Per channel: why the last reading failed.
    errors: Vec<Option<String>>,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("domains", &self.domains)
            .field("names", &self.names)
            .finish()
    }
}

/// A reading error as the warnings show it, with NVML's own name for the code.
pub fn read_error(e: &NvmlError) -> String {
    let code = match e {
        NvmlError::GpuLost => Some("NVML_ERROR_GPU_IS_LOST"),
        NvmlError::NotSupported => Some("NVML_ERROR_NOT_SUPPORTED"),
        NvmlError::ResetRequired => Some("NVML_ERROR_RESET_REQUIRED"),
        NvmlError::Uninitialized => Some("NVML_ERROR_UNINITIALIZED"),
        NvmlError::NoPermission => Some("NVML_ERROR_NO_PERMISSION"),
        NvmlError::Unknown => Some("NVML_ERROR_UNKNOWN"),
        _ => None,
    };
    match (e, code) {
        (NvmlError::GpuLost, Some(c)) => format!("the GPU is lost ({c})"),
        (_, Some(c)) => format!("{e} ({c})"),
        (_, None) => e.to_string(),
    }
}

fn init_error(lib: Option<&Path>, e: &NvmlError) -> String {
    let shown = lib.map_or_else(|| DEFAULT_LIB.to_string(), |p| p.display().to_string());
    match e {
        NvmlError::LibloadingError(err) => match lib {
            None => format!("nvml: {DEFAULT_LIB} not found (install the NVIDIA driver)"),
            Some(_) => {
                format!("nvml: cannot load {shown}: {err} (check --nvml-lib / RUPERF_NVML_LIB)")
            }
        },
        NvmlError::FailedToLoadSymbol(sym) => {
            format!("nvml: {shown} is not a usable NVML library: {sym}")
        }
        NvmlError::DriverNotLoaded => {
            "nvml: the NVIDIA driver is not loaded (load the nvidia kernel module)".into()
        }
        NvmlError::NoPermission => {
            "nvml: no permission to talk to the NVIDIA driver (check /dev/nvidia* permissions)"
                .into()
        }
        other => format!("nvml: {shown}: initialisation failed: {other}"),
    }
}

impl NvmlSource {
    /// Loads `lib` (or [`DEFAULT_LIB`]), initialises NVML and probes every GPU. The error
    /// starts with `nvml:` and says what is missing.
    pub fn open(lib: Option<&Path>) -> Result<Self, String> {
        let path: &OsStr = lib.map_or(OsStr::new(DEFAULT_LIB), |p| p.as_os_str());
        let nvml = Nvml::builder()
            .lib_path(path)
            .init()
            .map_err(|e| init_error(lib, &e))?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("nvml: cannot count GPUs: {e}"))?;
        if count == 0 {
            return Err("nvml: no NVIDIA GPU found (the driver reports 0 devices)".into());
        }
        let mut domains = Vec::new();
        let mut channels = Vec::new();
        let mut gpus = Vec::new();
        let mut names = Vec::new();
        let mut warnings = Vec::new();
        for i in 0..count {
            let domain = Domain::gpu(i);
            let dev = match nvml.device_by_index(i) {
                Ok(d) => d,
                Err(e) => {
                    warnings.push(format!("{domain}: skipped: {e}"));
                    continue;
                }
            };
            let name = dev.name().unwrap_or_else(|_| "unknown GPU".into());
            let (method, meter) = if dev.total_energy_consumption().is_ok() {
                (
                    Method::Energy,
                    Meter::Counter {
                        wrap: Wrap::Never,
                        joules_per_unit: 1e-3,
                    },
                )
            } else if dev.power_usage().is_ok() {
                (
                    Method::Power,
                    Meter::Power {
                        watts_per_unit: 1e-3,
                    },
                )
            } else {
                warnings.push(format!(
                    "{domain} ({name}): reports neither total energy nor power; skipped"
                ));
                continue;
            };
            channels.push(Channel {
                domain: domains.len(),
                meter,
            });
            domains.push(domain);
            gpus.push((i, method));
            names.push(name);
        }
        if domains.is_empty() {
            return Err(format!(
                "nvml: no GPU reports energy or power ({})",
                warnings.join("; ")
            ));
        }
        Ok(NvmlSource {
            nvml,
            errors: vec![None; channels.len()],
            domains,
            channels,
            gpus,
            names,
            warnings,
        })
    }

    /// The product name of each GPU, in [`Source::domains`] order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Source for NvmlSource {
    fn backend(&self) -> &'static str {
        "nvml"
    }

    fn domains(&self) -> &[Domain] {
        &self.domains
    }

    fn channels(&self) -> &[Channel] {
        &self.channels
    }

    fn read(&mut self, out: &mut [Option<u64>]) {
        for ((slot, &(index, method)), err) in out.iter_mut().zip(&self.gpus).zip(&mut self.errors)
        {
            let value = self.nvml.device_by_index(index).and_then(|d| match method {
                Method::Energy => d.total_energy_consumption(),
                Method::Power => d.power_usage().map(u64::from),
            });
            *slot = match value {
                Ok(v) => Some(v),
                Err(e) => {
                    *err = Some(read_error(&e));
                    None
                }
            };
        }
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn failure(&self, channel: usize) -> Option<String> {
        self.errors.get(channel).cloned().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_says_install_the_driver() {
        let e = NvmlSource::open(Some(Path::new("/nonexistent/libnvidia-ml.so.1"))).unwrap_err();
        assert!(
            e.starts_with("nvml: cannot load /nonexistent/libnvidia-ml.so.1"),
            "{e}"
        );
        assert!(e.contains("--nvml-lib"), "{e}");
        // The host has no NVIDIA driver; where it does, NVML opens or explains itself.
        match NvmlSource::open(None) {
            Ok(s) => assert!(!s.domains().is_empty()),
            Err(e) => assert!(e.starts_with("nvml: "), "{e}"),
        }
    }

    #[test]
    fn read_errors_name_the_nvml_code() {
        assert_eq!(
            read_error(&NvmlError::GpuLost),
            "the GPU is lost (NVML_ERROR_GPU_IS_LOST)"
        );
        assert!(read_error(&NvmlError::NotSupported).ends_with("(NVML_ERROR_NOT_SUPPORTED)"));
    }

    #[test]
    fn default_library_message() {
        let err = Nvml::builder()
            .lib_path(OsStr::new("/nonexistent/ruperf-test.so"))
            .init()
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            init_error(None, &err),
            "nvml: libnvidia-ml.so.1 not found (install the NVIDIA driver)"
        );
        assert!(init_error(None, &NvmlError::DriverNotLoaded).contains("not loaded"));
    }
}
