//! Settings, resolved the same way for every command: the stage's `Config::default()`, then a
//! TOML file (`--config FILE`), then the flags given. A file is checked on its own first, so an
//! unknown key or a wrong type is reported with the file, line and key; the result is then
//! validated by the stage's own `validate()`.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::UsageError;

/// A stage configuration as the command line resolves it.
pub trait Settings: Serialize + DeserializeOwned + Default {
    /// The stage's own checks.
    fn check(&self) -> Result<()>;
}

macro_rules! settings {
    ($($t:ty),* $(,)?) => {
        $(impl Settings for $t {
            fn check(&self) -> Result<()> {
                self.validate()?;
                Ok(())
            }
        })*
    };
}

settings!(
    crawler::Config,
    cleaner::Config,
    cleaner::TrainConfig,
    dedup::Config,
    tokenizer::TrainConfig,
    tokenizer::EncodeConfig,
    train::RunConfig,
    pipeline::Config,
    crawler::ImageFetchConfig,
    images::FilterConfig,
    images::ExportConfig,
);

impl Settings for corpus::import::ImportConfig {
    fn check(&self) -> Result<()> {
        if self.batch_size == 0 {
            anyhow::bail!(UsageError("batch_size: must be at least 1".into()));
        }
        Ok(())
    }
}

/// The flags given on the command line, as keys of the settings (dotted for nested tables).
#[derive(Default)]
pub struct Overrides(toml::Table, Option<String>);

impl Overrides {
    /// Sets `key` when the flag was given.
    pub fn set<T: Serialize>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            let v = match toml::Value::try_from(v) {
                Ok(v) => Some(v),
                Err(e) => {
                    // a value TOML cannot hold (an integer past 2^63, a path that is not UTF-8)
                    self.1.get_or_insert(format!("{key}: {e}"));
                    None
                }
            };
            if let Some(v) = v {
                let mut table = &mut self.0;
                let mut parts: Vec<&str> = key.split('.').collect();
                let last = parts.pop().unwrap_or(key);
                for p in parts {
                    let entry = table
                        .entry(p.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    let toml::Value::Table(t) = entry else {
                        unreachable!("flag keys never nest under a value")
                    };
                    table = t;
                }
                table.insert(last.to_string(), v);
            }
        }
        self
    }

    /// Sets `key` to `value` when a switch is on.
    pub fn switch<T: Serialize>(&mut self, key: &str, on: bool, value: T) -> &mut Self {
        self.set(key, on.then_some(value))
    }
}

/// Reads a settings file on its own: unknown keys and wrong types are errors naming the file,
/// the line and the key.
pub fn read_file<C: DeserializeOwned>(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "cannot read the settings file {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str::<C>(&text).map_err(|e| bad_file(path, &e))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad_file(path, &e))?;
    Ok(table)
}

fn bad_file(path: &Path, e: &toml::de::Error) -> UsageError {
    let message = e.message().trim_end();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            let source = text.lines().nth(line - 1).unwrap_or_default().trim();
            UsageError(format!(
                "{}:{line}: {message} (in `{source}`)",
                path.display()
            ))
        }
        None => UsageError(format!("{}: {message}", path.display())),
    }
}

/// `base`, then the file's keys, then the flags', validated.
pub fn resolve<C: Settings>(base: &C, file: Option<&Path>, flags: &Overrides) -> Result<C> {
    let mut value = toml::Value::try_from(base).context("the default settings as TOML")?;
    if let Some(path) = file {
        merge(&mut value, toml::Value::Table(read_file::<C>(path)?));
    }
    if let Some(e) = &flags.1 {
        anyhow::bail!(UsageError(format!("invalid flag value for {e}")));
    }
    merge(&mut value, toml::Value::Table(flags.0.clone()));
    // the file alone was read without error: what fails now is a flag's value
    let config: C = value.try_into().map_err(|e: toml::de::Error| {
        UsageError(format!("invalid flag value: {}", e.message().trim_end()))
    })?;
    config.check()?;
    Ok(config)
}

/// The settings as a TOML file that `--config` reads back to the same settings.
pub fn print<C: Serialize>(config: &C) -> Result<()> {
    out!(
        "{}",
        toml::to_string(config).context("the settings as TOML")?
    );
    Ok(())
}

/// `over`'s keys replace `base`'s, tables merged recursively.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}
