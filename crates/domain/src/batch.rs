//! A batch of commands as text — JSON Lines, or a JSON array — split into its commands, each
//! with the line (JSON Lines) or the position (an array) it came from, for every way one
//! arrives: `eduledger submit`, `POST /v1/commands`. The text is borrowed, never copied.

/// Why a text is not a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// It starts like a JSON array and is not one.
    #[error("the batch is not a JSON array: {0}")]
    NotArray(String),
    /// More commands than allowed (the rest is not read).
    #[error("more than {max} commands in one batch")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// No command at all.
    #[error("nothing to record: the batch is empty")]
    Empty,
}

/// The commands of `text` (a leading BOM, blank lines and surrounding space ignored), each
/// with its line or position from 1; at most `max`, read no further than one more.
pub fn batch_lines(text: &str, max: usize) -> Result<Vec<(usize, &str)>, BatchError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<(usize, &str)> = if text.trim_start().starts_with('[') {
        use serde::de::DeserializeSeed as _;
        let mut de = serde_json::Deserializer::from_str(text);
        let items = Bounded(max).deserialize(&mut de).and_then(|items| {
            de.end()?;
            Ok(items)
        });
        match items {
            Ok(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i + 1, v))
                .collect(),
            Err(e) if e.to_string().starts_with(TOO_MANY) => {
                return Err(BatchError::TooMany { max });
            }
            Err(e) => return Err(BatchError::NotArray(e.to_string())),
        }
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .take(max.saturating_add(1))
            .map(|(i, l)| (i + 1, l))
            .collect()
    };
    if lines.is_empty() {
        return Err(BatchError::Empty);
    }
    if lines.len() > max {
        return Err(BatchError::TooMany { max });
    }
    Ok(lines)
}

const TOO_MANY: &str = "more commands than a batch may hold";

/// A JSON array's elements as their own text, no more than `.0` of them.
struct Bounded(usize);

impl<'de> serde::de::DeserializeSeed<'de> for Bounded {
    type Value = Vec<&'de str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct Elements(usize);
        impl<'de> serde::de::Visitor<'de> for Elements {
            type Value = Vec<&'de str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON array of commands")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<&'de serde_json::value::RawValue>()? {
                    if out.len() == self.0 {
                        return Err(serde::de::Error::custom(TOO_MANY));
                    }
                    out.push(item.get());
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Elements(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_numbers_and_arrays_their_positions() {
        let text = "\u{feff}{\"a\":1}\n\n  \n{\"b\":2}\n";
        assert_eq!(
            batch_lines(text, 10).unwrap(),
            vec![(1, "{\"a\":1}"), (4, "{\"b\":2}")]
        );
        assert_eq!(
            batch_lines(" [ {\"a\":1}, {\"b\": [2]} ] ", 10).unwrap(),
            vec![(1, "{\"a\":1}"), (2, "{\"b\": [2]}")]
        );
        assert_eq!(batch_lines(" \n\n", 10), Err(BatchError::Empty));
        assert_eq!(batch_lines("[]", 10), Err(BatchError::Empty));
        assert!(matches!(
            batch_lines("[{}", 10),
            Err(BatchError::NotArray(_))
        ));
        assert!(matches!(
            batch_lines("[{}] trailing", 10),
            Err(BatchError::NotArray(_))
        ));
    }

    #[test]
    fn no_more_than_the_limit_is_read() {
        // what follows the limit's next element is not even JSON: never looked at
        let array = format!("[{},!!!", ["{}"; 4].join(","));
        assert_eq!(batch_lines(&array, 3), Err(BatchError::TooMany { max: 3 }));
        assert_eq!(
            batch_lines("{}\n{}\n{}\n{}\n", 3),
            Err(BatchError::TooMany { max: 3 })
        );
        assert_eq!(batch_lines("{}\n{}\n{}\n", 3).unwrap().len(), 3);
    }
}
