//! Who and where `deploy` runs: written into locks and release logs.

use crate::plan::Owner;
use std::time::SystemTime;

pub fn user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .or_else(crate::local_user::name)
        .unwrap_or_else(|| "unknown".into())
}

pub fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub fn owner(stage: &str, now: SystemTime) -> Owner {
    Owner {
        user: user(),
        machine: machine(),
        pid: std::process::id(),
        stage: stage.to_string(),
        started: crate::release_id::rfc3339(now),
        token: token(),
    }
}

/// 128 random bits in hex (from the kernel), naming one deploy's locks.
fn token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: this process and this instant are unique enough on one machine.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        return format!("{}-{nanos}", std::process::id());
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
