//! The part of a PERF_RECORD_SAMPLE after its call chain that DWARF unwinding needs: the user
//! registers (PERF_SAMPLE_REGS_USER) and the user stack dump (PERF_SAMPLE_STACK_USER).
//!
//! Every length comes from the record and is checked against the record's own size; a record
//! shorter than it says is reported as `None` (the reader counts it as undecodable), never read
//! past.

const SAMPLE_RAW: u64 = 1 << 10;
const SAMPLE_BRANCH_STACK: u64 = 1 << 11;
const SAMPLE_REGS_USER: u64 = 1 << 12;
const SAMPLE_STACK_USER: u64 = 1 << 13;
/// `PERF_SAMPLE_BRANCH_HW_INDEX` in branch_sample_type: a `hw_idx` word before the entries.
const BRANCH_HW_INDEX: u64 = 1 << 17;

/// What an event's attributes say about the tail of its samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct TailFormat {
    /// `sample_regs_user`: which registers are dumped, in bit order.
    pub regs_mask: u64,
    /// `branch_sample_type` (for the optional `hw_idx` word).
    pub branch_type: u64,
}

/// The decoded tail of one sample: a stack slice borrowed from the record.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserTail<'a> {
    /// The stack bytes the kernel could copy, from the user stack pointer up (`dyn_size`).
    pub stack: &'a [u8],
    /// The dump size asked for (`size`); a stack as large as this may have been cut.
    pub stack_size: u64,
}

/// Decodes from `pos` (just after the call chain): RAW and BRANCH_STACK are skipped, the user
/// registers go to `regs` (cleared; left empty when the sample has none, ABI 0) and the stack
/// is returned. `None` when the record is shorter than its fields say.
pub fn decode<'a>(
    b: &'a [u8],
    mut pos: usize,
    st: u64,
    fmt: TailFormat,
    big: bool,
    regs: &mut Vec<u64>,
) -> Option<UserTail<'a>> {
    let rd64 = |pos: &mut usize| -> Option<u64> {
        let s: [u8; 8] = b.get(*pos..pos.checked_add(8)?)?.try_into().ok()?;
        *pos += 8;
        Some(if big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    };
    let skip = |pos: &mut usize, bytes: u64| -> Option<()> {
        let end = pos.checked_add(usize::try_from(bytes).ok()?)?;
        (end <= b.len()).then(|| *pos = end)
    };
    regs.clear();
    if st & SAMPLE_RAW != 0 {
        let s: [u8; 4] = b.get(pos..pos.checked_add(4)?)?.try_into().ok()?;
        let size = if big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        };
        skip(&mut pos, 4 + u64::from(size))?;
    }
    if st & SAMPLE_BRANCH_STACK != 0 {
        let nr = rd64(&mut pos)?;
        if fmt.branch_type & BRANCH_HW_INDEX != 0 {
            rd64(&mut pos)?;
        }
        skip(&mut pos, nr.checked_mul(24)?)?;
    }
    if st & SAMPLE_REGS_USER != 0 {
        let abi = rd64(&mut pos)?;
        if abi != 0 {
            for _ in 0..fmt.regs_mask.count_ones() {
                regs.push(rd64(&mut pos)?);
            }
        }
    }
    let mut tail = UserTail::default();
    if st & SAMPLE_STACK_USER != 0 {
        let size = rd64(&mut pos)?;
        if size != 0 {
            let start = pos;
            skip(&mut pos, size)?;
            let dyn_size = rd64(&mut pos)?.min(size) as usize;
            tail.stack = &b[start..start + dyn_size];
            tail.stack_size = size;
        }
    }
    Some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[u64]) -> Vec<u8> {
        w.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn regs_and_stack_after_raw_and_branches() {
        let fmt = TailFormat {
            regs_mask: 0b1011,
            branch_type: BRANCH_HW_INDEX,
        };
        let mut b = Vec::new();
        b.extend_from_slice(&4u32.to_le_bytes()); // RAW: 4 bytes of data
        b.extend_from_slice(&[9, 9, 9, 9]);
        b.extend(words(&[1, 7])); // one branch, hw_idx
        b.extend(words(&[0, 0, 0]));
        b.extend(words(&[2, 10, 20, 30])); // ABI 64, three registers
        b.extend(words(&[16, 0x1111, 0x2222, 8])); // size 16, dyn_size 8
        let st = SAMPLE_RAW | SAMPLE_BRANCH_STACK | SAMPLE_REGS_USER | SAMPLE_STACK_USER;
        let mut regs = Vec::new();
        let t = decode(&b, 0, st, fmt, false, &mut regs).unwrap();
        assert_eq!(regs, [10, 20, 30]);
        assert_eq!(t.stack, &0x1111u64.to_le_bytes());
        assert_eq!(t.stack_size, 16);
        // Every shorter record is refused, never read past.
        for cut in 0..b.len() {
            assert!(
                decode(&b[..cut], 0, st, fmt, false, &mut regs).is_none(),
                "{cut}"
            );
        }
    }

    #[test]
    fn abi_none_and_empty_stack() {
        let fmt = TailFormat {
            regs_mask: u64::MAX,
            branch_type: 0,
        };
        let b = words(&[0, 0]);
        let mut regs = vec![1];
        let t = decode(
            &b,
            0,
            SAMPLE_REGS_USER | SAMPLE_STACK_USER,
            fmt,
            false,
            &mut regs,
        )
        .unwrap();
        assert!(regs.is_empty());
        assert!(t.stack.is_empty());
        // A dyn_size larger than the dump is clamped to it.
        let b = words(&[0, 8, 5, 1 << 40]);
        let t = decode(
            &b,
            0,
            SAMPLE_REGS_USER | SAMPLE_STACK_USER,
            fmt,
            false,
            &mut regs,
        )
        .unwrap();
        assert_eq!(t.stack.len(), 8);
        // A huge branch count cannot overflow.
        let b = words(&[u64::MAX / 2]);
        assert!(decode(&b, 0, SAMPLE_BRANCH_STACK, fmt, false, &mut regs).is_none());
    }
}
