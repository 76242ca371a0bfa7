//! The option names a part of the configuration reads, taken from its type: serde hands the
//! field names of a struct to the deserializer, and this one only records them. So the list of
//! known options is never kept by hand.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// Why the recorder stops: it has the names (or the type is not a struct).
#[derive(Debug)]
struct Recorded(&'static [&'static str]);

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Recorded {}

impl de::Error for Recorded {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Recorded(&[])
    }
}

struct Recorder;

impl<'de> Deserializer<'de> for Recorder {
    type Error = Recorded;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Recorded> {
        Err(Recorded(fields))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Recorded> {
        Err(Recorded(&[]))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The field names of a struct that derives `Deserialize` (empty for any other type).
pub fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(Recorder) {
        Err(Recorded(fields)) => fields,
        Ok(_) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Example {
        one: Option<String>,
        #[serde(rename = "two_renamed")]
        two: bool,
    }

    #[test]
    fn records_the_names_serde_reads() {
        assert_eq!(fields::<Example>(), &["one", "two_renamed"]);
        assert!(fields::<String>().is_empty());
    }
}
