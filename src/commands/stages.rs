//! `deploy` with no stage: which stages there are, from the config found (or `-c`).

use crate::error::Error;
use crate::settings::Settings;

/// Always a usage error (exit 2); its hint lists the stages of the config, when there is one.
pub fn run(settings: &Settings) -> Result<i32, Error> {
    let found =
        settings.config.clone().or_else(|| std::env::current_dir().ok().and_then(|cwd| crate::config::find(&cwd)));
    let listing = found.and_then(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        Some((path, describe(&text)?))
    });
    let hint = match listing {
        Some((path, stages)) if !stages.is_empty() => format!(
            "stages in {}: {}; `deploy plan STAGE` shows what a deploy will do",
            path.display(),
            stages.join(", ")
        ),
        _ => "`deploy plan STAGE` shows what a deploy will do; `deploy --help` lists the commands".into(),
    };
    Err(Error::Usage { message: "which stage? `deploy STAGE` deploys to it".into(), hint: Some(hint) })
}

/// `production (3 hosts, varnish)` for each stage, in file order; `None` if the file is not
/// TOML (the stage's own command reports that, with the place).
fn describe(text: &str) -> Option<Vec<String>> {
    let top: toml::Table = text.parse().ok()?;
    let top_balancer = top.get("balancer").and_then(|balancer| balancer.get("kind")).and_then(toml::Value::as_str);
    let stages = top.get("stages")?.as_table()?;
    Some(
        stages
            .iter()
            .map(|(name, stage)| {
                let hosts = stage.get("hosts").and_then(toml::Value::as_array).map_or(0, Vec::len);
                let plural = if hosts == 1 { "" } else { "s" };
                let balancer = stage
                    .get("balancer")
                    .and_then(|balancer| balancer.get("kind"))
                    .and_then(toml::Value::as_str)
                    .or(top_balancer)
                    .filter(|kind| *kind != "none");
                match balancer {
                    Some(kind) => format!("{name} ({hosts} host{plural}, {kind})"),
                    None => format!("{name} ({hosts} host{plural})"),
                }
            })
            .collect(),
    )
}
