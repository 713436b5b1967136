//! How durations and regexes are written in settings files: seconds as a number, regexes as
//! strings.

/// A `Duration` as a number of seconds.
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v)
            .map_err(|_| D::Error::custom(format!("{v} is not a number of seconds (0 or more)")))
    }
}

/// Regexes as their source strings.
pub mod regexes {
    use regex::Regex;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(list: &[Regex], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(Regex::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Regex>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|r| Regex::new(r).map_err(|e| D::Error::custom(format!("regex {r:?}: {e}"))))
            .collect()
    }
}
