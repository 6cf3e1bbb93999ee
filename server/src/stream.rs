//! Reading Redis Stream replies (`XRANGE`, `XREADGROUP`, `XAUTOCLAIM`): the entries' ids and
//! their `event` field, for the relay and `tidings events tail`. Pure parsing of
//! `redis::Value`s; sends nothing.

use redis::Value;

/// The entries of a list of stream entries (`[[id, [field, value, …]], …]`): each id with its
/// `event` field. Entries Redis reports as deleted (nil) are left out.
pub fn entries(list: &Value) -> Vec<(String, Option<String>)> {
    let Value::Array(items) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(pair) = item else {
                return None;
            };
            let id = text(pair.first()?)?;
            let event = match pair.get(1) {
                Some(Value::Array(fields)) => fields
                    .chunks(2)
                    .find(|kv| kv.first().and_then(text).as_deref() == Some("event"))
                    .and_then(|kv| kv.get(1))
                    .and_then(text),
                _ => None,
            };
            Some((id, event))
        })
        .collect()
}

/// The entries of an `XREADGROUP` reply for one stream (`[[stream, entries]]`, or nil when the
/// block timed out).
pub fn read_reply(reply: &Value) -> Vec<(String, Option<String>)> {
    match reply {
        Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                Value::Array(pair) => pair.get(1).map(entries).unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams.iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// An `XAUTOCLAIM` reply: the cursor to continue from (`0-0` when the scan is complete) and
/// the entries now ours.
pub fn autoclaim_reply(reply: &Value) -> (String, Vec<(String, Option<String>)>) {
    match reply {
        Value::Array(parts) => (
            parts.first().and_then(text).unwrap_or_else(|| "0-0".into()),
            parts.get(1).map(entries).unwrap_or_default(),
        ),
        _ => ("0-0".into(), Vec::new()),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn entries_carry_their_event_field_and_deleted_ones_are_skipped() {
        let list = Value::Array(vec![
            Value::Array(vec![
                bulk("5-0"),
                Value::Array(vec![bulk("event"), bulk("{}")]),
            ]),
            Value::Nil,
            Value::Array(vec![
                bulk("6-0"),
                Value::Array(vec![bulk("other"), bulk("x")]),
            ]),
        ]);
        assert_eq!(
            entries(&list),
            [("5-0".into(), Some("{}".into())), ("6-0".into(), None)]
        );
        let read = Value::Array(vec![Value::Array(vec![bulk("t:events"), list.clone()])]);
        assert_eq!(read_reply(&read).len(), 2);
        assert!(read_reply(&Value::Nil).is_empty());
        let claim = Value::Array(vec![bulk("0-0"), list, Value::Array(vec![])]);
        let (cursor, claimed) = autoclaim_reply(&claim);
        assert_eq!((cursor.as_str(), claimed.len()), ("0-0", 2));
    }
}
