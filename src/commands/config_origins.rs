//! `deploy config STAGE`: the merged configuration, value by value, with its origin.

use crate::error::Error;
use crate::settings::Settings;

pub fn run(settings: &Settings, stage: &str) -> Result<i32, Error> {
    // The same checks as any command first (errors as usual, exit 2).
    let cfg = super::load(settings, stage)?;
    let text = std::fs::read_to_string(&cfg.file).map_err(|source| Error::File {
        path: cfg.file.clone(),
        action: "read",
        source,
    })?;
    let dir = cfg.file.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let env = |name: &str| std::env::var(name).ok();
    let origins = crate::config::origins(&cfg.file.display().to_string(), &text, &dir, stage, &env)?;
    let width = origins.iter().map(|origin| origin.key.len() + origin.value.len() + 3).max().unwrap_or(0).min(100);
    let mut out = format!("# {} stage {stage}: recipe < file < stage; values as written\n", cfg.file.display());
    for origin in origins {
        let line = format!("{} = {}", origin.key, origin.value);
        out.push_str(&format!("{line:<width$}  # {}\n", origin.from));
    }
    super::out(&cfg.redact(&out));
    Ok(0)
}
