//! sysfs PMU discovery (in progress).
