//! Reading a configuration file safely: its size and YAML alias expansion bounded
//! before the loader sees it, and whole-number settings kept whole.

use super::ConfigError;
use std::path::Path;

/// Refuses a fraction where the setting is a whole number: the loader would round
/// `max_attempts: 2.5` to 3 without a word.
pub(super) fn whole_numbers(
    defaults: &config::Config,
    given: &config::Config,
) -> Result<(), ConfigError> {
    use config::{Map, Source, Value, ValueKind};
    fn walk(
        key: &str,
        expected: &Map<String, Value>,
        given: &Map<String, Value>,
    ) -> Result<(), ConfigError> {
        for (name, value) in given {
            let Some(default) = expected.get(name) else {
                continue;
            };
            let key = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            let whole = matches!(
                default.kind,
                ValueKind::I64(_) | ValueKind::U64(_) | ValueKind::I128(_) | ValueKind::U128(_)
            );
            match (&default.kind, &value.kind) {
                (ValueKind::Table(d), ValueKind::Table(g)) => walk(&key, d, g)?,
                (_, ValueKind::Float(f)) if whole && f.fract() != 0.0 => {
                    return Err(ConfigError::invalid(
                        key,
                        format!("expected a whole number, got {f}"),
                    ));
                }
                (_, ValueKind::String(s)) if whole && s.trim().parse::<i128>().is_err() => {
                    return Err(ConfigError::invalid(
                        key,
                        format!("expected a whole number, got `{s}`"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
    let load = |e: config::ConfigError| ConfigError::Load(e.to_string());
    walk(
        "",
        &defaults.collect().map_err(load)?,
        &given.collect().map_err(load)?,
    )
}

/// The largest configuration file read: every key with a comment is about 20 KiB.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// The most YAML nodes a configuration may expand to through its aliases: the full file
/// has about 400.
const MAX_CONFIG_NODES: u64 = 100_000;

/// Reads a configuration file, refusing one too large or one whose aliases expand past
/// [`MAX_CONFIG_NODES`] (a "billion laughs" file) before the YAML loader expands them.
pub(super) fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let load = |why: String| ConfigError::Load(format!("{}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| load(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| load(e.to_string()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(load("larger than 1 MiB".into()));
    }
    let nodes = yaml_nodes(&text).map_err(load)?;
    if nodes > MAX_CONFIG_NODES {
        return Err(load(format!(
            "its YAML aliases expand to more than {MAX_CONFIG_NODES} values"
        )));
    }
    Ok(text)
}

/// How many nodes a YAML text stands for once its aliases are expanded, counted from
/// the parser's events without expanding anything.
fn yaml_nodes(text: &str) -> Result<u64, String> {
    use yaml_rust2::parser::{Event, EventReceiver, Parser};
    #[derive(Default)]
    struct Count {
        open: Vec<(usize, u64)>,
        anchored: std::collections::HashMap<usize, u64>,
        total: u64,
    }
    impl Count {
        fn add(&mut self, n: u64, anchor: usize) {
            if anchor > 0 {
                self.anchored.insert(anchor, n);
            }
            match self.open.last_mut() {
                Some(parent) => parent.1 = parent.1.saturating_add(n),
                None => self.total = self.total.saturating_add(n),
            }
        }
    }
    impl EventReceiver for Count {
        fn on_event(&mut self, ev: Event) {
            match ev {
                Event::Scalar(_, _, anchor, _) => self.add(1, anchor),
                Event::Alias(id) => self.add(self.anchored.get(&id).copied().unwrap_or(1), 0),
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    self.open.push((anchor, 1))
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((anchor, n)) = self.open.pop() {
                        self.add(n, anchor);
                    }
                }
                _ => {}
            }
        }
    }
    let mut count = Count::default();
    Parser::new_from_str(text)
        .load(&mut count, true)
        .map_err(|e| e.to_string())?;
    Ok(count.total)
}
