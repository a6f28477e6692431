//! The energy unit of every RAPL domain read through the MSRs, per CPU model: a pure function
//! of (vendor, family, model, unit register) so that the whole table is unit-tested.
//!
//! Checked against the kernel's `drivers/powercap/intel_rapl_common.c` (`rapl_ids`,
//! `rapl_defaults_hsw_server`, `rapl_defaults_spr_server`, `rapl_check_unit_atom`),
//! `arch/x86/events/rapl.c` (`rapl_model_match`, `RAPL_UNIT_QUIRK_INTEL_HSW` / `_SPR`) and
//! turbostat (`has_fixed_rapl_unit`, `has_fixed_rapl_psys_unit`, `has_rapl_divisor`):
//!
//! | quirk | models (family 6) | source |
//! |---|---|---|
//! | DRAM in fixed 2^-16 J (15.3 µJ) units | 0x3F Haswell-X, 0x4F Broadwell-X, 0x56 Broadwell-D, 0x55 Skylake-X (Cascade/Cooper Lake), 0x6A Ice Lake-X, 0x6C Ice Lake-D, 0x57 Knights Landing, 0x85 Knights Mill | all three (powercap leaves out 0x56; perf and turbostat include it) |
//! | DRAM in the standard unit | 0x8F Sapphire Rapids, 0xCF Emerald Rapids, and every other model | kernel 2022 "Use standard Energy Unit for SPR Dram RAPL domain"; turbostat `spr_features` |
//! | psys in fixed 1 J units | 0x8F Sapphire Rapids, 0xCF Emerald Rapids, 0xAD/0xAE Granite Rapids | all three for SPR/EMR; turbostat for Granite Rapids (the kernel reads it through TPMI) |
//! | every domain in 2^ESU µJ (a multiplier, not 2^-ESU J) | 0x37 Silvermont (Bay Trail), 0x4A Merrifield, 0x4C Airmont (Cherry Trail), 0x5A Moorefield | powercap `rapl_check_unit_atom`; turbostat `has_rapl_divisor` (0x37) |
//!
//! The fixed DRAM unit is taken as exactly 2^-16 J, as perf does; powercap and turbostat use
//! 15.3 µJ, 0.27 % more. AMD and Hygon read every domain in 2^-ESU J from 0xC0010299.

use crate::energy::DomainKind;

/// Which CPU a unit table applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// GenuineIntel.
    Intel,
    /// AuthenticAMD or HygonGenuine.
    Amd,
}

/// Joules per raw count of each RAPL domain kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Units {
    /// Package.
    pub pkg: f64,
    /// Cores (PP0; AMD's per-core counter).
    pub cores: f64,
    /// Uncore / graphics (PP1).
    pub uncore: f64,
    /// DRAM.
    pub dram: f64,
    /// Platform (psys).
    pub psys: f64,
}

impl Units {
    /// The unit of one kind (GPU has none here; it returns the package unit).
    pub fn of(&self, kind: DomainKind) -> f64 {
        match kind {
            DomainKind::Package | DomainKind::Gpu => self.pkg,
            DomainKind::Cores => self.cores,
            DomainKind::Uncore => self.uncore,
            DomainKind::Dram => self.dram,
            DomainKind::Psys => self.psys,
        }
    }
}

/// Energy Status Unit: bits 12:8 of the power-unit register.
pub fn esu(unit_register: u64) -> u32 {
    ((unit_register >> 8) & 0x1F) as u32
}

/// True on the Intel models whose DRAM domain counts in fixed 2^-16 J units.
pub fn dram_fixed_unit(family: u32, model: u32) -> bool {
    family == 6
        && matches!(
            model,
            0x3F // Haswell-X
            | 0x4F // Broadwell-X
            | 0x56 // Broadwell-D
            | 0x55 // Skylake-X, Cascade Lake, Cooper Lake
            | 0x6A // Ice Lake-X
            | 0x6C // Ice Lake-D
            | 0x57 // Knights Landing
            | 0x85 // Knights Mill
        )
}

/// True on the Intel models whose psys domain counts in fixed 1 J units.
pub fn psys_joule_unit(family: u32, model: u32) -> bool {
    family == 6
        && matches!(
            model,
            0x8F // Sapphire Rapids
            | 0xCF // Emerald Rapids
            | 0xAD // Granite Rapids X
            | 0xAE // Granite Rapids D
        )
}

/// True on the Atom models whose ESU is a multiplier: unit = 2^ESU µJ.
pub fn atom_multiplier_unit(family: u32, model: u32) -> bool {
    family == 6
        && matches!(
            model,
            0x37 // Silvermont (Bay Trail)
            | 0x4A // Silvermont-MID (Merrifield)
            | 0x4C // Airmont (Cherry Trail)
            | 0x5A // Airmont-MID (Moorefield)
        )
}

/// The joules per count of every domain kind on this CPU, given its power-unit register
/// (Intel 0x606, AMD 0xC0010299).
pub fn units(vendor: Vendor, family: u32, model: u32, unit_register: u64) -> Units {
    let e = esu(unit_register);
    let standard = 2f64.powi(-(e as i32));
    if vendor == Vendor::Amd {
        return Units {
            pkg: standard,
            cores: standard,
            uncore: standard,
            dram: standard,
            psys: standard,
        };
    }
    let base = if atom_multiplier_unit(family, model) {
        2f64.powi(e as i32) * 1e-6
    } else {
        standard
    };
    Units {
        pkg: base,
        cores: base,
        uncore: base,
        dram: if dram_fixed_unit(family, model) {
            2f64.powi(-16)
        } else {
            base
        },
        psys: if psys_joule_unit(family, model) {
            1.0
        } else {
            base
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESU14: u64 = 0x000A_0E03;
    const ESU16: u64 = 0x000A_1003;

    fn intel(model: u32, reg: u64) -> Units {
        units(Vendor::Intel, 6, model, reg)
    }

    #[test]
    fn standard_unit_from_the_register() {
        assert_eq!(esu(ESU14), 14);
        assert_eq!(esu(ESU16), 16);
        let u = intel(0x8C, ESU14); // Tiger Lake: no quirk.
        for k in DomainKind::RAPL {
            assert_eq!(u.of(k), 2f64.powi(-14), "{k:?}");
        }
    }

    #[test]
    fn sapphire_and_emerald_rapids_dram_is_standard_psys_is_one_joule() {
        for model in [0x8F, 0xCF] {
            let u = intel(model, ESU14);
            assert_eq!(u.dram, 2f64.powi(-14), "{model:#x}: DRAM must follow 0x606");
            assert_eq!(u.pkg, 2f64.powi(-14));
            assert_eq!(u.psys, 1.0);
        }
        // Granite Rapids: psys in joules (turbostat), DRAM standard.
        for model in [0xAD, 0xAE] {
            let u = intel(model, ESU14);
            assert_eq!((u.dram, u.psys), (2f64.powi(-14), 1.0));
        }
        // Sierra Forest (0xAF) and Grand Ridge (0xB6): no quirk.
        for model in [0xAF, 0xB6] {
            assert_eq!(intel(model, ESU14).psys, 2f64.powi(-14));
        }
    }

    #[test]
    fn server_dram_fixed_unit_table() {
        let fixed = [0x3F, 0x4F, 0x56, 0x55, 0x6A, 0x6C, 0x57, 0x85];
        for model in 0..=0xFFu32 {
            let u = intel(model, ESU14);
            let want = if fixed.contains(&model) {
                2f64.powi(-16)
            } else if atom_multiplier_unit(6, model) {
                u.pkg
            } else {
                2f64.powi(-14)
            };
            assert_eq!(u.dram, want, "model {model:#x}");
        }
        // Only family 6 has the quirks.
        assert_eq!(units(Vendor::Intel, 0x13, 0x55, ESU14).dram, 2f64.powi(-14));
        assert_eq!(units(Vendor::Intel, 0x13, 0x8F, ESU14).psys, 2f64.powi(-14));
    }

    #[test]
    fn silvermont_and_airmont_multiply() {
        // Bay Trail reports ESU 5: 32 µJ per count.
        let reg = 0x0000_0505;
        for model in [0x37, 0x4A, 0x4C, 0x5A] {
            let u = intel(model, reg);
            assert_eq!(u.pkg, 32e-6, "{model:#x}");
            assert_eq!(u.cores, 32e-6);
        }
        // Silvermont-D (Avoton, 0x4D) uses the standard unit.
        assert_eq!(intel(0x4D, reg).pkg, 2f64.powi(-5));
    }

    #[test]
    fn amd_every_domain_standard() {
        let u = units(Vendor::Amd, 0x19, 0x01, ESU16);
        assert_eq!(u.pkg, 2f64.powi(-16));
        assert_eq!(u.cores, 2f64.powi(-16));
        // A model number that is a quirky Intel one means nothing on AMD.
        assert_eq!(units(Vendor::Amd, 6, 0x55, ESU14).dram, 2f64.powi(-14));
    }
}
