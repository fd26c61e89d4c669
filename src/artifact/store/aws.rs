//! Credentials and region as the AWS CLI finds them: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` in the environment, else the profile
//! (`[artifact] profile`, else `AWS_PROFILE`, else `default`) in the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`) or the config file
//! (`AWS_CONFIG_FILE`, else `~/.aws/config`). A profile named in `Deploy.toml` wins over the
//! environment's keys, as `--profile` does for the CLI. SSO, `credential_process`, role
//! assumption and instance metadata are not read.

use std::path::PathBuf;

/// Keys to sign with; `Debug` never shows the secret.
#[derive(Clone)]
pub struct Keys {
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(out, "Keys {{ key: {:?}, secret: <hidden>, token: {} }}", self.key, self.token.is_some())
    }
}

/// Reads the environment through `env` (a test passes its own).
pub struct Aws<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub home: Option<PathBuf>,
}

impl Aws<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|value| !value.is_empty())
    }

    fn profile_name(&self, configured: Option<&str>) -> String {
        configured.map(String::from).or_else(|| self.var("AWS_PROFILE")).unwrap_or_else(|| "default".into())
    }

    fn file(&self, variable: &str, name: &str) -> Option<PathBuf> {
        self.var(variable).map(PathBuf::from).or_else(|| self.home.as_ref().map(|home| home.join(".aws").join(name)))
    }

    /// The keys, or where they were looked for.
    pub fn keys(&self, profile: Option<&str>) -> Result<Keys, String> {
        if profile.is_none()
            && let (Some(key), Some(secret)) = (self.var("AWS_ACCESS_KEY_ID"), self.var("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Keys { key, secret, token: self.var("AWS_SESSION_TOKEN") });
        }
        let name = self.profile_name(profile);
        let mut looked = vec!["AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment".to_string()];
        for (variable, file, section) in [
            ("AWS_SHARED_CREDENTIALS_FILE", "credentials", name.clone()),
            ("AWS_CONFIG_FILE", "config", if name == "default" { name.clone() } else { format!("profile {name}") }),
        ] {
            let Some(path) = self.file(variable, file) else { continue };
            looked.push(format!("[{section}] in {}", path.display()));
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let values = section_values(&text, &section);
            let get = |key: &str| values.iter().find(|(name, _)| name == key).map(|(_, value)| value.clone());
            if let (Some(key), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
                return Ok(Keys { key, secret, token: get("aws_session_token") });
            }
        }
        Err(format!("no S3 credentials: looked for {}", looked.join(", ")))
    }

    /// The region: `configured`, else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
    /// `region`, else `us-east-1`.
    pub fn region(&self, configured: Option<&str>, profile: Option<&str>) -> String {
        if let Some(region) = configured.map(String::from).or_else(|| self.var("AWS_REGION")) {
            return region;
        }
        if let Some(region) = self.var("AWS_DEFAULT_REGION") {
            return region;
        }
        let name = self.profile_name(profile);
        let section = if name == "default" { name } else { format!("profile {name}") };
        self.file("AWS_CONFIG_FILE", "config")
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| section_values(&text, &section).into_iter().find(|(key, _)| key == "region"))
            .map(|(_, region)| region)
            .unwrap_or_else(|| "us-east-1".into())
    }
}

/// `key = value` lines of `[section]` in an INI file (the AWS CLI's format: `#` and `;`
/// comments, keys case-sensitive, spaces around `=` optional).
fn section_values(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut values = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            values.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::Aws;
    use std::collections::HashMap;

    #[test]
    fn environment_then_profiles() {
        let dir = std::env::temp_dir().join(format!("deploy-aws-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(
            dir.join(".aws/credentials"),
            "[default]\naws_access_key_id = DKEY\naws_secret_access_key=DSECRET\n\n[ci]\n# a comment\naws_access_key_id = CKEY\naws_secret_access_key = CSECRET\naws_session_token = CTOKEN\n",
        )
        .unwrap();
        std::fs::write(dir.join(".aws/config"), "[default]\nregion = eu-west-3\n[profile ci]\nregion = ap-south-1\n")
            .unwrap();
        let run = |vars: &[(&str, &str)], profile: Option<&str>| {
            let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let env = move |name: &str| vars.get(name).cloned();
            let aws = Aws { env: &env, home: Some(dir.clone()) };
            (aws.keys(profile), aws.region(None, profile))
        };
        let (keys, region) = run(&[("AWS_ACCESS_KEY_ID", "EKEY"), ("AWS_SECRET_ACCESS_KEY", "ESECRET")], None);
        assert_eq!((keys.unwrap().key.as_str(), region.as_str()), ("EKEY", "eu-west-3"));
        let (keys, _) = run(&[], None);
        assert_eq!(keys.unwrap().secret, "DSECRET");
        let (keys, region) = run(&[("AWS_PROFILE", "ci")], None);
        let keys = keys.unwrap();
        assert_eq!((keys.key.as_str(), keys.token.as_deref(), region.as_str()), ("CKEY", Some("CTOKEN"), "ap-south-1"));
        assert!(!format!("{keys:?}").contains("CSECRET"));
        // A profile in Deploy.toml wins over the environment's keys.
        let (keys, _) = run(&[("AWS_ACCESS_KEY_ID", "EKEY"), ("AWS_SECRET_ACCESS_KEY", "ESECRET")], Some("ci"));
        assert_eq!(keys.unwrap().key, "CKEY");
        let (keys, region) = run(&[("AWS_REGION", "us-west-2")], Some("nope"));
        assert!(keys.unwrap_err().contains("[nope] in"));
        assert_eq!(region, "us-west-2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
